package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"

	"tongban/gateway/bundle"
	"tongban/internal/durable"
	"tongban/ledger/format"
	"tongban/ledger/witness"
)

const mirrorUsage = "usage: tongban mirror --server URL --log-key KEY --dir DIR [--witness VKEY]... [--quorum K] [--sm2-key KEY] [--token T] [--follow [--interval D] [--agency ID]] | tongban mirror verify --dir DIR --log-key KEY [--witness VKEY]... [--quorum K]"

// runMirror keeps a verified copy of a gateway's ledger, fetched through
// the tlog-tiles API, and with --follow keeps it up to date.
func runMirror(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "verify" {
		return runMirrorVerify(args[1:], stdout)
	}
	fs := flag.NewFlagSet("mirror", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it (obtained out of band)")
	dir := fs.String("dir", "", "where the verified copy lives (created on first use)")
	follow := fs.Bool("follow", false, "keep up with the log until interrupted")
	interval := fs.Duration("interval", 5*time.Second, "with --follow, how often to look for new entries")
	agency := fs.String("agency", "", "with --follow, print the entries that concern this agency")
	sm2Arg := fs.String("sm2-key", "", "gm profile: the log's SM2 verifier key, or a file holding it; every checkpoint must then carry its signature")
	var pf policyFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *keyArg == "" || *dir == "" || *interval <= 0 {
		return usageError(mirrorUsage)
	}
	if cf.token == "" {
		cf.token = os.Getenv("TONGBAN_TOKEN") // none is fine when the tiles are public
	}
	cf.server = strings.TrimRight(cf.server, "/")
	vkey, err := loadVerifierKey(*keyArg)
	if err != nil {
		return err
	}
	policy, err := pf.policy()
	if err != nil {
		return err
	}
	m, err := openMirror(*dir, vkey)
	if err != nil {
		return err
	}
	defer m.close()
	if m.n > 0 {
		fmt.Fprintf(stdout, "holding %d verified entries of %s (root %s)\n", m.cp.Size, m.cp.Origin, m.cp.Root)
	}
	f := &mirrorFollower{m: m, cf: &cf, policy: policy, agency: *agency, follow: *follow, out: stdout}
	if *sm2Arg != "" {
		if f.sm2Key, err = loadSM2VerifierKey(*sm2Arg); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		f.belowQuorum = false
		err := f.round(ctx)
		var ee exitError
		switch {
		case f.belowQuorum && attempt < quorumWaits:
			// Right after a write the served checkpoint may not carry the
			// quorum yet: give the witnesses a moment.
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Second):
			}
			continue
		case err == nil:
		case errors.As(err, &ee) || !*follow:
			return err
		case ctx.Err() != nil:
			return nil
		default:
			fmt.Fprintf(stderr, "mirror: %v (retrying in %s)\n", err, *interval)
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

func runMirrorVerify(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mirror verify", flag.ContinueOnError)
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it")
	dir := fs.String("dir", "", "the mirror's directory")
	var pf policyFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *keyArg == "" || *dir == "" {
		return usageError(mirrorUsage)
	}
	vkey, err := loadVerifierKey(*keyArg)
	if err != nil {
		return err
	}
	policy, err := pf.policy()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*dir, mirrorCheckpoint)); err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: %s holds no mirror: %v", *dir, err)}
	}
	m, err := openMirror(*dir, vkey)
	if err != nil {
		return err
	}
	defer m.close()
	witnessed := "its cosignatures not checked (no --witness given)"
	if policy != nil {
		res, err := policy.Check(m.signed)
		if err != nil {
			return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: the mirror's checkpoint (size %d): %v", m.cp.Size, err)}
		}
		witnessed = fmt.Sprintf("cosigned by %d trusted witnesses (quorum %d), no later than %s", len(res.Valid), policy.Quorum(), res.NoLaterThan.Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "OK: %d entries of %s, each canonical, chained and hashing to the signed root %s; the checkpoint is signed by the log key, %s\n",
		m.cp.Size, m.cp.Origin, m.cp.Root, witnessed)
	return nil
}

// Files in a mirror's directory.
const (
	mirrorEntries    = "entries"    // length-prefixed canonical entries, in order
	mirrorCheckpoint = "checkpoint" // the signed checkpoint they hash to
)

// mirrorStore is a verified copy of a log: entries appended to one file,
// then synced, then the checkpoint they hash to replaced atomically. The
// checkpoint is the commit point: on open, entries beyond it (from a crash
// between the two writes) are cut off, and everything is verified again.
type mirrorStore struct {
	dir, vkey string
	signed    []byte
	cp        format.Checkpoint
	hashes    []tlog.Hash // every stored hash of the tree, in tlog's order
	prev      format.Hash // leaf hash of the last entry
	n         int64       // entries held
	f         *os.File
}

// openMirror opens (or creates) the mirror in dir and verifies what it
// holds: the checkpoint's signature, every entry's canonical form, seq and
// prev link, and the tree's root against the checkpoint's.
func openMirror(dir, vkey string) (*mirrorStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	m := &mirrorStore{dir: dir, vkey: vkey}
	b, err := os.ReadFile(filepath.Join(dir, mirrorCheckpoint))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if m.cp, err = format.OpenCheckpoint(b, vkey); err != nil {
			return nil, exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: the mirror's checkpoint in %s: %v", dir, err)}
		}
		m.signed = b
	}
	m.f, err = os.OpenFile(filepath.Join(dir, mirrorEntries), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	off, err := m.load(m.cp.Size)
	if err != nil {
		m.f.Close()
		return nil, err
	}
	if m.n > 0 {
		if err := m.checkRoot(m.cp); err != nil {
			m.f.Close()
			return nil, exitError{code: 1, msg: fmt.Sprintf("the mirror in %s: %v", dir, err)}
		}
	}
	// Entries past the checkpoint were never committed.
	if err := m.f.Truncate(off); err != nil {
		m.f.Close()
		return nil, err
	}
	if _, err := m.f.Seek(off, io.SeekStart); err != nil {
		m.f.Close()
		return nil, err
	}
	return m, nil
}

func (m *mirrorStore) close() error { return m.f.Close() }

// loadBatch is how many entries the mirror's file is read and parsed in
// at a time.
const loadBatch = 1024

// load reads the first n entries of the mirror's file and verifies them
// into the tree held: batches are parsed on every core while they are added
// in order. It returns the offset just past them.
func (m *mirrorStore) load(n int64) (int64, error) {
	type batch struct {
		first int64
		parsedEntries
		err error // reading stopped after raws
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	futures := make(chan chan batch, runtime.GOMAXPROCS(0)+1)
	go func() {
		defer close(futures)
		r := bufio.NewReaderSize(m.f, 1<<20)
		var hdr [4]byte
		var slab []byte
		for first := int64(0); first < n && ctx.Err() == nil; first += loadBatch {
			var raws [][]byte
			var err error
			for i := first; i < min(first+loadBatch, n) && err == nil; i++ {
				if _, err = io.ReadFull(r, hdr[:]); err != nil {
					err = exitError{code: 1, msg: fmt.Sprintf("the mirror in %s holds %d entries, its checkpoint says %d: %v", m.dir, i, n, err)}
					break
				}
				sz := int(binary.BigEndian.Uint32(hdr[:]))
				if sz > format.MaxEntrySize {
					err = exitError{code: 1, msg: fmt.Sprintf("entry %d in %s: a record of %d bytes", i, m.dir, sz)}
					break
				}
				if cap(slab)-len(slab) < sz { // entries share slabs: fewer allocations
					slab = make([]byte, 0, max(1<<18, sz))
				}
				raw := slab[len(slab) : len(slab)+sz : len(slab)+sz]
				slab = slab[:len(slab)+sz]
				if _, err = io.ReadFull(r, raw); err != nil {
					err = exitError{code: 1, msg: fmt.Sprintf("entry %d in %s: %v", i, m.dir, err)}
					break
				}
				raws = append(raws, raw)
			}
			c := make(chan batch, 1)
			select {
			case futures <- c:
			case <-ctx.Done():
				return
			}
			go func() { c <- batch{first: first, parsedEntries: parseEntries(raws), err: err} }()
			if err != nil {
				return
			}
		}
	}()
	defer func() { // on an early return: let the parsers end
		cancel()
		for c := range futures {
			<-c
		}
	}()
	var off int64
	for c := range futures {
		b := <-c
		if _, err := m.addAll(b.parsedEntries, b.first); err != nil {
			return 0, exitError{code: 1, msg: fmt.Sprintf("the mirror in %s: %v", m.dir, err)}
		}
		if b.err != nil {
			return 0, b.err
		}
		for _, raw := range b.raws {
			off += 4 + int64(len(raw))
		}
	}
	return off, nil
}

// hashReader reads the mirror's own stored hashes.
func (m *mirrorStore) hashReader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(m.hashes)) {
				return nil, fmt.Errorf("hash %d not held", x)
			}
			out[i] = m.hashes[x]
		}
		return out, nil
	})
}

// addParsed verifies the next entry, already parsed (which proved its
// bytes canonical) and hashed by parseEntries off the ordered path: in
// sequence and linked to the one before. It adds it to the tree in memory.
func (m *mirrorStore) addParsed(e *format.Entry, leaf format.Hash) error {
	if e.Seq != m.n {
		return fmt.Errorf("entry %d: holds seq %d", m.n, e.Seq)
	}
	if e.Prev != m.prev {
		return fmt.Errorf("entry %d: its prev hash %s is not the leaf hash of entry %d (%s): the chain is broken", m.n, e.Prev, m.n-1, m.prev)
	}
	hs, err := tlog.StoredHashesForRecordHash(m.n, tlog.Hash(leaf), m.hashReader())
	if err != nil {
		return err
	}
	m.hashes = append(m.hashes, hs...)
	m.prev = leaf
	m.n++
	return nil
}

// parsedEntries are entries checked for canonical form and hashed, the
// part of verifying that needs no order and so runs on several cores.
type parsedEntries struct {
	raws    [][]byte
	entries []*format.Entry // entries[i] parses raws[i]; shorter than raws after a failure
	leaves  []format.Hash
	err     error // why raws[len(entries)] is not a canonical entry
}

func parseEntries(raws [][]byte) parsedEntries {
	p := parsedEntries{raws: raws, entries: make([]*format.Entry, 0, len(raws)), leaves: make([]format.Hash, 0, len(raws))}
	for _, raw := range raws {
		e, err := format.ParseEntry(raw)
		if err != nil {
			p.err = err
			break
		}
		p.entries = append(p.entries, e)
		p.leaves = append(p.leaves, format.LeafHash(raw))
	}
	return p
}

// addAll adds the parsed entries in order, from seq first on (skipping
// those before the mirror's end); it stops at the first that fails.
func (m *mirrorStore) addAll(p parsedEntries, first int64) ([]*format.Entry, error) {
	var added []*format.Entry
	for i := range p.raws {
		if first+int64(i) < m.n {
			continue
		}
		if i == len(p.entries) {
			return added, fmt.Errorf("entry %d: %w", m.n, p.err)
		}
		if err := m.addParsed(p.entries[i], p.leaves[i]); err != nil {
			return added, err
		}
		added = append(added, p.entries[i])
	}
	return added, nil
}

// rollback forgets the entries added after the first n.
func (m *mirrorStore) rollback(n int64, prev format.Hash) {
	m.hashes = m.hashes[:tlog.StoredHashCount(n)]
	m.n, m.prev = n, prev
}

// checkRoot compares the tree held with a checkpoint of the same size.
func (m *mirrorStore) checkRoot(cp format.Checkpoint) error {
	root, err := tlog.TreeHash(cp.Size, m.hashReader())
	if err != nil {
		return err
	}
	if root != cp.Root {
		return fmt.Errorf("the %d entries hash to root %s, the signed checkpoint says %s", cp.Size, format.Hash(root), cp.Root)
	}
	return nil
}

// commit makes the entries added since the last commit durable, then the
// checkpoint they hash to.
func (m *mirrorStore) commit(raws [][]byte, signed []byte, cp format.Checkpoint) error {
	w := bufio.NewWriterSize(m.f, 1<<20)
	for _, raw := range raws {
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(raw))))
		w.Write(raw)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := m.f.Sync(); err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(m.dir, mirrorCheckpoint), signed, 0o600); err != nil {
		return err
	}
	m.signed, m.cp = signed, cp
	return nil
}

// quorumWaits is how many rounds a one-shot mirror tries while the
// served checkpoint lacks the quorum of cosignatures.
const quorumWaits = 15

// mirrorFollower brings a mirror up to a gateway's newest checkpoint.
type mirrorFollower struct {
	m      *mirrorStore
	cf     *clientFlags
	policy *witness.Policy
	sm2Key string // gm profile: the SM2 verifier key every checkpoint must be signed by
	agency string
	follow bool
	out    io.Writer

	packets     map[string][2]string // packet -> origin, destination (for --agency)
	belowQuorum bool                 // the last round's checkpoint lacked the quorum
}

// round fetches the newest checkpoint and, if it is newer, the entries up
// to it. Any inconsistency is an exitError with code 1, both checkpoints
// saved; a checkpoint that cannot be trusted is code 3.
func (f *mirrorFollower) round(ctx context.Context) error {
	m := f.m
	signed, err := f.get(ctx, "checkpoint")
	if err != nil {
		return err
	}
	cp, err := format.OpenCheckpoint(signed, m.vkey)
	if err == nil && f.sm2Key != "" {
		_, _, err = bundle.OpenCheckpoint(signed, m.vkey, f.sm2Key) // the SM2 line too
	}
	if err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: the server's checkpoint: %v", err)}
	}
	if f.policy != nil {
		if _, err := f.policy.Check(signed); err != nil {
			if cp.Size > m.cp.Size && !f.follow {
				f.belowQuorum = true
				return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: the server's checkpoint (size %d): %v", cp.Size, err)}
			}
			if cp.Size > m.cp.Size {
				fmt.Fprintf(f.out, "size %d is not yet cosigned by a quorum (%v); waiting\n", cp.Size, err)
				return nil
			}
		}
	}
	fork := func(why string) error {
		dir := filepath.Join(m.dir, "fork-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
		if err := saveFork(dir, m.signed, signed); err != nil {
			return exitError{code: 1, msg: fmt.Sprintf("FORK: %s; saving the evidence failed: %v", why, err)}
		}
		return exitError{code: 1, msg: fmt.Sprintf("FORK: the log %s is not consistent with the checkpoint this mirror holds: %s; held: size %d root %s, presented: size %d root %s; both signed checkpoints saved in %s",
			cp.Origin, why, m.cp.Size, m.cp.Root, cp.Size, cp.Root, dir)}
	}
	switch {
	case cp.Size == m.cp.Size && m.signed != nil:
		if cp.Root != m.cp.Root {
			return fork(fmt.Sprintf("two roots for size %d", cp.Size))
		}
		if !f.follow {
			fmt.Fprintf(f.out, "up to date: %d entries, root %s\n", cp.Size, cp.Root)
		}
		return nil
	case cp.Size < m.cp.Size:
		if err := m.checkRoot(cp); err != nil {
			return fork(fmt.Sprintf("the server's tree of size %d is not a prefix of the one held: %v", cp.Size, err))
		}
		fmt.Fprintf(f.out, "the server is behind this mirror (size %d, holding %d); its tree is a prefix of the one held\n", cp.Size, m.cp.Size)
		return nil
	}
	// The server's tree must extend the one held: prove it from the
	// server's hash tiles (checked against its signed root) before
	// fetching a single entry.
	tree := tlog.Tree{N: cp.Size, Hash: cp.Root}
	if m.cp.Size > 0 {
		thr := tlog.TileHashReader(tree, &tileFetcher{ctx: ctx, f: f})
		proof, err := tlog.ProveTree(cp.Size, m.cp.Size, thr)
		if err != nil {
			return fmt.Errorf("consistency proof from the server's tiles: %w", err)
		}
		if err := tlog.CheckTree(proof, cp.Size, cp.Root, m.cp.Size, m.cp.Root); err != nil {
			return fork(fmt.Sprintf("the tree of size %d held is not a prefix of the server's tree of size %d (%v)", m.cp.Size, cp.Size, err))
		}
	}
	start, prev := m.n, m.prev
	var raws [][]byte
	var added []*format.Entry
	bctx, stop := context.WithCancel(ctx)
	bundles := f.entryBundles(bctx, start, cp.Size)
	defer func() { // on an early return: stop fetching, let the fetchers end
		stop()
		for range bundles {
		}
	}()
	for b := range bundles {
		if b.err != nil {
			m.rollback(start, prev)
			return b.err
		}
		es, err := m.addAll(b.parsedEntries, b.n*torchwood.TileWidth)
		if err != nil {
			m.rollback(start, prev)
			return f.bad(signed, err)
		}
		raws = append(raws, b.raws[len(b.raws)-len(es):]...)
		added = append(added, es...)
	}
	if err := m.checkRoot(cp); err != nil {
		m.rollback(start, prev)
		return f.bad(signed, fmt.Errorf("the entries served: %w", err))
	}
	if err := m.commit(raws, signed, cp); err != nil {
		m.rollback(start, prev)
		return err
	}
	for _, e := range added {
		f.report(e)
	}
	fmt.Fprintf(f.out, "mirrored %d new entries: %d verified entries of %s, root %s\n", len(raws), cp.Size, cp.Origin, cp.Root)
	return nil
}

// entryBundle is one fetched entry bundle, tile n of width w, split and
// parsed.
type entryBundle struct {
	n, w int64
	parsedEntries
	err error
}

// fetchAhead is how many entry bundles are fetched and parsed while the
// oldest is verified in order.
const fetchAhead = 8

// entryBundles fetches the entry bundles that hold entries from..size-1,
// several at a time, splits and parses each as it arrives, and delivers
// them in order. It stops after an error (delivered last) or when ctx
// ends; the caller must drain the channel, or cancel ctx and drain it.
func (f *mirrorFollower) entryBundles(ctx context.Context, from, size int64) <-chan entryBundle {
	ctx, cancel := context.WithCancel(ctx)
	futures := make(chan chan entryBundle, fetchAhead)
	go func() {
		defer close(futures)
		for n := from / torchwood.TileWidth; n*torchwood.TileWidth < size; n++ {
			w := min(size-n*torchwood.TileWidth, torchwood.TileWidth)
			c := make(chan entryBundle, 1)
			select {
			case futures <- c:
			case <-ctx.Done():
				return
			}
			go func() {
				b := entryBundle{n: n, w: w}
				data, err := f.get(ctx, torchwood.TilePath(tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(w)}))
				if err == nil {
					var raws [][]byte
					raws, err = splitBundle(data, n, w)
					b.parsedEntries = parseEntries(raws)
				}
				b.err = err
				c <- b
			}()
		}
	}()
	out := make(chan entryBundle)
	go func() {
		defer close(out)
		defer cancel()
		for c := range futures {
			b := <-c
			out <- b
			if b.err != nil {
				for c := range futures { // let the fetches in flight end
					cancel()
					<-c
				}
				return
			}
		}
	}()
	return out
}

// splitBundle splits entry bundle n into its w entries.
func splitBundle(data []byte, n, w int64) ([][]byte, error) {
	raws := make([][]byte, w)
	for i := range raws {
		var err error
		if raws[i], data, err = torchwood.ReadTileEntry(data); err != nil {
			return nil, exitError{code: 1, msg: fmt.Sprintf("entry bundle %d: %v", n, err)}
		}
	}
	if len(data) != 0 {
		return nil, exitError{code: 1, msg: fmt.Sprintf("entry bundle %d holds more than its %d entries", n, w)}
	}
	return raws, nil
}

// bad reports entries that do not match the server's own signed tree,
// keeping both checkpoints.
func (f *mirrorFollower) bad(signed []byte, err error) error {
	dir := filepath.Join(f.m.dir, "bad-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
	if serr := saveFork(dir, f.m.signed, signed); serr != nil {
		return exitError{code: 1, msg: fmt.Sprintf("ALTERED: %v (saving the checkpoints failed: %v)", err, serr)}
	}
	return exitError{code: 1, msg: fmt.Sprintf("ALTERED: %v; nothing mirrored past size %d; both checkpoints saved in %s", err, f.m.cp.Size, dir)}
}

// report prints, when following, entries that concern the agency and
// every integrity violation.
func (f *mirrorFollower) report(e *format.Entry) {
	if !f.follow {
		return
	}
	var pl struct{ Origin, Destination string }
	if e.Type == "packet.submitted" {
		json.Unmarshal(e.Payload, &pl)
		if f.packets == nil {
			f.packets = map[string][2]string{}
		}
		f.packets[e.Packet] = [2]string{pl.Origin, pl.Destination}
	}
	ends := f.packets[e.Packet]
	switch {
	case e.Type == "integrity.violation":
		fmt.Fprintf(f.out, "INTEGRITY VIOLATION seq %d packet %s by %s:%s: %s\n", e.Seq, e.Packet, e.Actor.Agency, e.Actor.Role, e.Payload)
	case f.agency != "" && (e.Actor.Agency == f.agency || ends[0] == f.agency || ends[1] == f.agency):
		fmt.Fprintf(f.out, "seq %d %s packet %s by %s:%s at %s\n", e.Seq, e.Type, e.Packet, e.Actor.Agency, e.Actor.Role, e.Time.UTC().Format(time.RFC3339))
	}
}

// get reads a tlog-tiles resource.
func (f *mirrorFollower) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", f.cf.server+"/v1/ledger/tlog/"+path, nil)
	if err != nil {
		return nil, err
	}
	if f.cf.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.cf.token)
	}
	resp, err := mirrorClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %w", path, apiError(resp))
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// mirrorClient keeps a connection open for each tile fetched at once
// (the default client keeps two, and would reconnect for the rest).
var mirrorClient = &http.Client{Transport: func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = fetchAhead + 2
	return t
}()}

// tileFetcher reads the server's hash tiles for tlog.TileHashReader,
// which checks them against the signed tree.
type tileFetcher struct {
	ctx context.Context
	f   *mirrorFollower
}

func (t *tileFetcher) Height() int { return torchwood.TileHeight }

func (t *tileFetcher) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		b, err := t.f.get(t.ctx, torchwood.TilePath(tile))
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (t *tileFetcher) SaveTiles([]tlog.Tile, [][]byte) {}
