package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultOrigin names the log in checkpoints when Options.Origin is empty.
const DefaultOrigin = "tongban.yrd/ledger"

var (
	// ErrNotFound is returned for a seq or size beyond the log.
	ErrNotFound = errors.New("ledger: not found")
	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("ledger: closed")
	// ErrLocked is returned by Open when another process holds the ledger:
	// there is exactly one sequencer.
	ErrLocked = errors.New("ledger: in use by another process")
	// ErrReadOnly is returned by Append on a ledger opened read-only.
	ErrReadOnly = errors.New("ledger: opened read-only")
)

// Options configure Open. The zero value of every field but Dir means its default.
type Options struct {
	// Dir holds the Badger database (in Dir/db) and, by default, the signer key.
	Dir string
	// Origin is the log's name in checkpoints and the signer key's name.
	Origin string
	// KeyFile is the note signer key; created (0600) if missing.
	// Default: Dir/signer.key.
	KeyFile string
	// CoSigners sign every checkpoint too, each adding its line to the
	// note after the key file's Ed25519 line: the gm profile's SM2 key
	// (ledger/gmnote). Verifiers that know only one of the keys still
	// accept the note. Each must be named Origin.
	CoSigners []note.Signer
	// ReadOnly opens without taking the sequencer role, for offline checks.
	ReadOnly bool
	// MaxBatch caps how many appends share one transaction (default 1024).
	MaxBatch int
	// GCInterval is how often the value-log GC runs (default 10 minutes).
	GCInterval time.Duration
	// Logger receives Badger's warnings and the ledger's own (default: slog.Default()).
	Logger *slog.Logger
	// Now is the clock for entry times (default time.Now).
	Now func() time.Time
	// SignInterval is the least time between two checkpoint signatures
	// (default 1 s): a request for a checkpoint while the last one is
	// younger waits for the next signature, which then serves every
	// request that waited.
	SignInterval time.Duration
	// KeepCheckpointEvery says which signed checkpoints are kept: the
	// first signed in each such period (by Now), and the newest (default 1 h).
	KeepCheckpointEvery time.Duration
	// BadgerOptions, if set, adjusts the Badger options before opening.
	BadgerOptions func(badger.Options) badger.Options
}

// Ledger is an open audit log. Its methods are safe for concurrent use.
type Ledger struct {
	db     *badger.DB
	opts   Options
	signer note.Signer
	vkey   string
	cache  *chunkCache // complete chunks of tree hashes, for proofs

	reqs      chan *appendReq
	closing   chan struct{}
	committed chan struct{} // closed when the committer has exited
	closeOnce sync.Once
	stopGC    context.CancelFunc
	gcDone    chan struct{}
	warmed    chan struct{} // closed when warmProofs has ended

	// Sequencer state, owned by the committer goroutine.
	size     int64
	lastLeaf Hash
	frontier frontier    // stored hashes of the complete subtrees on the right edge
	tail     []byte      // the last, partial chunk of stored hashes
	spare    *badger.Txn // the next batch's transaction, opened before a commit is sent

	mu        sync.RWMutex // guards head
	head      Checkpoint   // size and root of everything committed
	signMu    sync.Mutex   // serialises signing; guards the fields below
	signed    Checkpoint   // latest signed checkpoint
	signedCP  []byte
	signedAt  time.Time // when this process signed it, or opened the ledger
	lastSign  time.Time // when this process last signed (monotonic), for SignInterval
	keptSlot  int64     // the KeepCheckpointEvery period of the last checkpoint kept for good
	transient bool      // the newest stored checkpoint goes when the next is signed

	failed  atomic.Pointer[error] // the last commit's failure; nil after a success
	commits atomic.Int64          // successful commits, for the benchmarks' batch sizes
}

// Open opens or creates the ledger in opts.Dir. A second Open of the same
// directory, in this process or another, fails with ErrLocked.
func Open(opts Options) (*Ledger, error) {
	if opts.Dir == "" {
		return nil, errors.New("ledger: Options.Dir is required")
	}
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if opts.KeyFile == "" {
		opts.KeyFile = filepath.Join(opts.Dir, "signer.key")
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.GCInterval <= 0 {
		opts.GCInterval = 10 * time.Minute
	}
	if opts.SignInterval <= 0 {
		opts.SignInterval = time.Second
	}
	if opts.KeepCheckpointEvery <= 0 {
		opts.KeepCheckpointEvery = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReadOnly {
		if _, err := os.Stat(filepath.Join(opts.Dir, "db")); err != nil {
			return nil, fmt.Errorf("ledger: no ledger in %s: %w", opts.Dir, err)
		}
	} else if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &Ledger{opts: opts, cache: newChunkCache(8192)} // 8192 chunks: 16 MiB
	skey, err := l.loadKey()
	if err != nil {
		return nil, err
	}
	if l.signer, err = note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("ledger: signer key: %w", err)
	}
	if l.vkey, err = VerifierKey(skey); err != nil {
		return nil, err
	}
	if l.signer.Name() != opts.Origin {
		return nil, fmt.Errorf("ledger: key %s is named %q, not the origin %q", opts.KeyFile, l.signer.Name(), opts.Origin)
	}
	for _, s := range opts.CoSigners {
		if s.Name() != opts.Origin {
			return nil, fmt.Errorf("ledger: co-signer key is named %q, not the origin %q", s.Name(), opts.Origin)
		}
	}

	bo := badger.DefaultOptions(filepath.Join(opts.Dir, "db")).
		WithSyncWrites(true).
		WithCompression(options.None). // hashes do not compress; entries are small
		WithReadOnly(opts.ReadOnly).
		WithLogger(badgerLogger{opts.Logger}).
		WithNumCompactors(2).
		WithMetricsEnabled(false).
		// One committer writes entries and no transaction reads what it
		// then writes, so there is nothing for Badger to detect.
		WithDetectConflicts(false)
	if opts.BadgerOptions != nil {
		bo = opts.BadgerOptions(bo)
	}
	l.db, err = badger.Open(bo)
	if opts.ReadOnly && err != nil && strings.Contains(err.Error(), badger.ErrTruncateNeeded.Error()) { // Badger does not wrap it
		// The writer was killed: its write-ahead log has an unused or torn
		// tail, which Badger will not replay read-only. Replay it as the
		// gateway's next start would (only entries never acknowledged are
		// cut off: writes are synced), then open read-only again.
		opts.Logger.Warn("ledger: not closed cleanly; replaying its write-ahead log before the read-only open", "dir", opts.Dir)
		var rw *badger.DB
		if rw, err = badger.Open(bo.WithReadOnly(false)); err == nil {
			if err = rw.Close(); err == nil {
				l.db, err = badger.Open(bo)
			}
		}
	}
	if err != nil {
		if strings.Contains(err.Error(), "Another process is using this Badger database") {
			return nil, fmt.Errorf("%w: %s", ErrLocked, opts.Dir)
		}
		return nil, fmt.Errorf("ledger: open badger: %w", err)
	}
	if err := l.load(); err != nil {
		l.db.Close()
		return nil, err
	}
	l.closing = make(chan struct{})
	l.committed = make(chan struct{})
	if opts.ReadOnly {
		close(l.committed)
		return l, nil
	}
	l.reqs = make(chan *appendReq, opts.MaxBatch)
	go l.commitLoop()
	ctx, cancel := context.WithCancel(context.Background())
	l.stopGC, l.gcDone, l.warmed = cancel, make(chan struct{}), make(chan struct{})
	go l.gcLoop(ctx)
	go l.warmProofs(ctx)
	return l, nil
}

// load restores the sequencer state after Open and refuses a ledger whose
// tree no longer matches the checkpoint it last signed, so that it never
// signs two checkpoints that disagree.
//
// A read-only ledger (for offline checks) loads only its size: every other
// check is Verify's, which names the first bad seq.
func (l *Ledger) load() error {
	return l.db.View(func(txn *badger.Txn) error {
		size, err := getInt(txn, keySize)
		if err != nil {
			return err
		}
		if l.opts.ReadOnly {
			l.head = Checkpoint{Origin: l.opts.Origin, Size: size}
			return nil
		}
		l.size = size
		hr := &hashReader{txn: txn}
		idx := frontierIndexes(size)
		hashes, err := hr.ReadHashes(idx)
		if err != nil {
			return fmt.Errorf("ledger: load tree: %w", err)
		}
		l.frontier = make(frontier, len(idx))
		for i, x := range idx {
			l.frontier[i] = storedHash{x, hashes[i]}
		}
		n := tlog.StoredHashCount(size)
		if l.tail, err = hr.chunk(n/chunkHashes, 0); err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		l.tail = append([]byte(nil), l.tail[:min(len(l.tail), int(n%chunkHashes)*HashSize)]...)
		if size > 0 {
			raw, err := getValue(txn, entryKey(size-1))
			if err != nil {
				return fmt.Errorf("ledger: load last entry: %w", err)
			}
			l.lastLeaf = LeafHash(raw)
		}
		root, err := tlog.TreeHash(size, hr)
		if err != nil {
			return fmt.Errorf("ledger: load root: %w", err)
		}
		l.head = Checkpoint{Origin: l.opts.Origin, Size: size, Root: root}
		cp, signed, err := latestCheckpoint(txn, l.vkey)
		if err != nil {
			return err
		}
		if signed != nil {
			at, err := tlog.TreeHash(cp.Size, hr)
			if err != nil || cp.Size > size || at != cp.Root {
				return &VerifyError{Seq: cp.Size - 1, Reason: "tree does not match the latest signed checkpoint; run `tongban ledger verify`"}
			}
			l.signed, l.signedCP = cp, signed
		}
		l.signedAt = l.opts.Now()
		l.keptSlot = -1 // the checkpoint loaded stays: it was the newest
		return nil
	})
}

// Close stops accepting appends, waits for queued ones, signs a final
// checkpoint, stops the GC loop and closes Badger.
func (l *Ledger) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closing)
		<-l.committed
		if !l.opts.ReadOnly {
			l.stopGC()
			<-l.gcDone
			<-l.warmed
			if _, cerr := l.checkpoint(true); cerr != nil {
				err = cerr
			}
		}
		if cerr := l.db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("ledger: close: %w", cerr)
		}
	})
	return err
}

// gcLoop reclaims value-log space until ctx ends. Entries are never
// deleted, so there is little to reclaim, but rewritten chunks and
// checkpoints leave stale versions behind.
func (l *Ledger) gcLoop(ctx context.Context) {
	defer close(l.gcDone)
	t := time.NewTicker(l.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for l.db.RunValueLogGC(0.5) == nil {
				if ctx.Err() != nil {
					return
				}
			}
		}
	}
}

// warmProofs reads every stored tree-hash chunk once, in key order, and
// keeps the hashes that proofs share (upperLevel and above), so that a
// proof soon after Open reads about one chunk instead of one per level.
// It runs in the background until done or ctx ends; a failure only means
// proofs read more.
func (l *Ledger) warmProofs(ctx context.Context) {
	defer close(l.warmed)
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'h'}, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := int64(binary.BigEndian.Uint64(it.Item().Key()[1:]))
			err := it.Item().Value(func(v []byte) error {
				l.cache.putUpper(c, v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		l.opts.Logger.Warn("ledger: reading tree hashes ahead for proofs failed", "err", err)
	}
}

// Err reports whether the ledger can take appends: ErrClosed after Close,
// the last commit's failure (a full or failing disk) until a commit
// succeeds again, nil otherwise. For readiness checks.
func (l *Ledger) Err() error {
	select {
	case <-l.closing:
		return ErrClosed
	default:
	}
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Size returns the number of committed entries.
func (l *Ledger) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head.Size
}

// Head returns the size and root of the committed tree (unsigned). A
// read-only ledger knows only its size until Verify.
func (l *Ledger) Head() Checkpoint {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.head
}

// VerifierKey returns the note verifier key for this log's checkpoints.
func (l *Ledger) VerifierKey() string { return l.vkey }

// Origin returns the log's origin line.
func (l *Ledger) Origin() string { return l.opts.Origin }

// Checkpoint returns a signed checkpoint that covers every entry
// acknowledged before the call. It signs lazily: only when the tree has
// grown since the last signature, and at most once per SignInterval; a
// call that needs a newer checkpoint meanwhile waits for the next one.
func (l *Ledger) Checkpoint() ([]byte, error) { return l.checkpoint(false) }

func (l *Ledger) checkpoint(now bool) ([]byte, error) {
	head := l.Head()
	for {
		l.signMu.Lock()
		if l.signedCP != nil && l.signed.Size >= head.Size {
			defer l.signMu.Unlock()
			return l.signedCP, nil
		}
		if l.opts.ReadOnly {
			l.signMu.Unlock()
			return nil, ErrReadOnly
		}
		wait := time.Until(l.lastSign.Add(l.opts.SignInterval))
		if now || wait <= 0 || l.lastSign.IsZero() {
			defer l.signMu.Unlock()
			return l.sign()
		}
		l.signMu.Unlock()
		time.Sleep(wait)
	}
}

// sign signs the head, which covers whatever the caller waited for, and
// stores the signature. The newest checkpoint before it is deleted unless
// it was the first signed in its KeepCheckpointEvery period, so the
// checkpoints kept grow with time, not with traffic. l.signMu is held.
func (l *Ledger) sign() ([]byte, error) {
	head := l.Head()
	signed, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(head))}, l.signers()...)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign checkpoint: %w", err)
	}
	at := l.opts.Now()
	slot := at.UnixNano() / int64(l.opts.KeepCheckpointEvery)
	err = l.db.Update(func(txn *badger.Txn) error {
		if l.signedCP != nil && l.transient && l.signed.Size != head.Size {
			if err := txn.Delete(checkpointKey(l.signed.Size)); err != nil {
				return err
			}
		}
		return txn.Set(checkpointKey(head.Size), signed)
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: store checkpoint: %w", err)
	}
	l.signed, l.signedCP, l.signedAt, l.lastSign = head, signed, at, time.Now()
	l.transient = slot == l.keptSlot
	l.keptSlot = slot
	return signed, nil
}

// Signed returns the latest signed checkpoint and when it was signed (for a
// checkpoint signed before this process opened the ledger: the open time).
func (l *Ledger) Signed() (Checkpoint, time.Time) {
	l.signMu.Lock()
	defer l.signMu.Unlock()
	return l.signed, l.signedAt
}

// Get returns the entry at seq.
func (l *Ledger) Get(seq int64) (*Record, error) {
	if seq < 0 || seq >= l.Size() {
		return nil, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	var raw []byte
	err := l.db.View(func(txn *badger.Txn) error {
		var err error
		raw, err = getValue(txn, entryKey(seq))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: get %d: %w", seq, err)
	}
	return decodeRecord(raw)
}

// ByPacket returns the entries recorded for packet, in seq order.
func (l *Ledger) ByPacket(packet string) ([]*Record, error) {
	var recs []*Record
	size := l.Size()
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: packetPrefix(packet)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			seq := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
			if seq >= size {
				continue // committed after we read the size; not yet acknowledged
			}
			raw, err := getValue(txn, entryKey(seq))
			if err != nil {
				return err
			}
			rec, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: entries of packet: %w", err)
	}
	return recs, nil
}

// Record is an entry as stored: its canonical bytes and their leaf hash.
type Record struct {
	Entry
	Raw  []byte
	Hash Hash
}

func decodeRecord(raw []byte) (*Record, error) {
	e, err := ParseEntry(raw)
	if err != nil {
		return nil, err
	}
	return &Record{Entry: *e, Raw: raw, Hash: LeafHash(raw)}, nil
}

// badgerLogger sends Badger's warnings and errors to slog; its info
// chatter about compactions is dropped.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(strings.TrimSpace(fmt.Sprintf(f, a...)), "component", "badger")
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}

// Scan calls fn for every committed entry from seq from on, in order. An
// error from fn stops the scan and is returned.
func (l *Ledger) Scan(ctx context.Context, from int64, fn func(*Record) error) error {
	size := l.Size()
	return l.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte{'e'}
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(entryKey(max(from, 0))); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := it.Item().Key()
			if int64(binary.BigEndian.Uint64(k[1:])) >= size {
				return nil
			}
			raw, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			rec, err := decodeRecord(raw)
			if err != nil {
				return err
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		return nil
	})
}
