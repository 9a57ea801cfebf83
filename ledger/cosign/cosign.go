// Package cosign is the gateway's side of witnessing: it asks the
// configured witnesses to cosign the log's checkpoints as the log grows,
// keeps the cosignatures it gathers, and tells the gateway when a quorum
// of witnesses is out of reach for too long to keep taking writes.
//
// What is served: the newest checkpoint the log has signed, with every
// cosignature gathered for it so far. Right after a write that may be
// fewer than the quorum (the witnesses are asked at once); a monitor
// needs the newest tree, and a verifier that needs the quorum asks again
// or uses Cosigned, the newest checkpoint that has it.
//
// The data directory holds cosign.json: the newest checkpoint with a
// quorum of cosignatures, the newest with any, and the size each witness
// last cosigned. It is replaced atomically and synced, and read at start
// to refuse a tree that no longer matches what the witnesses cosigned.
package cosign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"tongban/internal/durable"
	"tongban/ledger/format"
	"tongban/ledger/witness"
)

// Witness is one configured witness.
type Witness struct {
	Name string `json:"name"`
	URL  string `json:"url"` // its submission prefix: URL/add-checkpoint
	Key  string `json:"key"` // its cosignature verifier key
}

// ParseWitness parses the --witness flag: "NAME URL VKEY".
func ParseWitness(s string) (Witness, error) {
	f := strings.Fields(s)
	if len(f) != 3 {
		return Witness{}, fmt.Errorf("witness %q: want \"NAME URL VKEY\"", s)
	}
	return Witness{Name: f[0], URL: f[1], Key: f[2]}, nil
}

// Log is what the gatherer needs of the ledger.
type Log interface {
	Checkpoint() ([]byte, error) // signs lazily when the tree grew
	ProveConsistency(from, to int64) ([]format.Hash, error)
	Size() int64
	VerifierKey() string
}

// Options configure Open. Zero values mean the defaults.
type Options struct {
	Witnesses []Witness
	Quorum    int
	Dir       string // where cosign.json lives (required)
	// Grace is how long entries may wait for a quorum of cosignatures
	// before writes are refused (default 10 minutes).
	Grace time.Duration
	// Timeout bounds one request to a witness (default 10 s).
	Timeout time.Duration
	// Poll is how often the log's size is checked (default 1 s).
	Poll time.Duration
	// MaxBackoff caps the wait after repeated failures (default 1 minute).
	MaxBackoff time.Duration
	HTTP       *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
}

// stateFile is cosign.json.
const stateFile = "cosign.json"

type fileState struct {
	Quorum    string           `json:"quorum_checkpoint,omitempty"` // newest with a quorum
	Latest    string           `json:"latest_checkpoint,omitempty"` // newest with any cosignature
	Witnesses map[string]int64 `json:"witnesses"`                   // size each last cosigned
}

// Gatherer gathers cosignatures. Its methods are safe for concurrent use.
type Gatherer struct {
	opts   Options
	policy *witness.Policy
	client witness.Client
	ws     []*wstate
	log    Log // set by Run

	mu      sync.Mutex
	notes   map[int64][]byte // signed checkpoints by size, with cosignatures gathered
	target  int64            // size of the newest log-signed checkpoint
	quorum  int64            // size of the newest checkpoint with a quorum (0: none)
	latest  int64            // size of the newest with any cosignature
	waiting []seen           // sizes signed and not yet covered by a quorum
}

type seen struct {
	size int64
	at   time.Time
}

type wstate struct {
	Witness
	policy *witness.Policy
	kick   chan struct{}

	// guarded by Gatherer.mu
	size     int64 // what it last cosigned, as far as we know
	asked    bool  // asked at least once by this process
	ok       bool  // its latest answer was a valid cosignature
	failures int64
	streak   int
	lastOK   time.Time
	lastErr  error
	next     time.Time
}

// Open checks the options and loads the durable state from opts.Dir.
func Open(opts Options) (*Gatherer, error) {
	if opts.Dir == "" {
		return nil, errors.New("cosign: Options.Dir is required")
	}
	if opts.Grace <= 0 {
		opts.Grace = 10 * time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var keys []string
	names := map[string]bool{}
	g := &Gatherer{opts: opts, client: witness.Client{HTTP: opts.HTTP}, notes: map[int64][]byte{}}
	for _, w := range opts.Witnesses {
		if w.Name == "" || w.URL == "" || names[w.Name] {
			return nil, fmt.Errorf("cosign: witness %q: a unique name and a URL are required", w.Name)
		}
		names[w.Name] = true
		p, err := witness.NewPolicy([]string{w.Key}, 1)
		if err != nil {
			return nil, fmt.Errorf("cosign: witness %s: %w", w.Name, err)
		}
		keys = append(keys, w.Key)
		g.ws = append(g.ws, &wstate{Witness: w, policy: p, kick: make(chan struct{}, 1)})
	}
	var err error
	if g.policy, err = witness.NewPolicy(keys, opts.Quorum); err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	if err := g.load(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gatherer) load() error {
	b, err := os.ReadFile(filepath.Join(g.opts.Dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cosign: %w", err)
	}
	var st fileState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("cosign: %s: %w", filepath.Join(g.opts.Dir, stateFile), err)
	}
	for _, w := range g.ws {
		w.size = st.Witnesses[w.Name]
	}
	for _, s := range []string{st.Quorum, st.Latest} {
		if s == "" {
			continue
		}
		cp, err := format.ParseCheckpoint(checkpointText([]byte(s)))
		if err != nil {
			return fmt.Errorf("cosign: %s: %w", stateFile, err)
		}
		g.notes[cp.Size] = []byte(s)
		g.latest = max(g.latest, cp.Size)
		if s == st.Quorum {
			g.quorum = cp.Size
		}
	}
	return nil
}

// checkpointText is the text of a signed note (up to the blank line).
func checkpointText(signed []byte) []byte {
	if i := bytes.Index(signed, []byte("\n\n")); i >= 0 {
		return signed[:i+1]
	}
	return signed
}

// Cosigned returns the newest checkpoint that carries a quorum of valid
// cosignatures (nil when there is none yet), with its size. With quorum 0
// it is the newest log-signed checkpoint seen.
func (g *Gatherer) Cosigned() ([]byte, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opts.Quorum == 0 {
		return g.notes[g.target], g.target
	}
	return g.notes[g.quorum], g.quorum
}

// CosignedProof returns the newest checkpoint with a quorum of
// cosignatures and a consistency proof from the tree of size from to it,
// for evidence that carries an exact-size checkpoint of its own.
func (g *Gatherer) CosignedProof(from int64) ([]byte, []format.Hash, error) {
	signed, size := g.Cosigned()
	if signed == nil {
		return nil, nil, errors.New("cosign: no checkpoint has a quorum of cosignatures yet")
	}
	if g.log == nil {
		return nil, nil, errors.New("cosign: not running")
	}
	if from > size {
		return nil, nil, fmt.Errorf("cosign: size %d is beyond the newest cosigned checkpoint (%d)", from, size)
	}
	p, err := g.log.ProveConsistency(from, size)
	return signed, p, err
}

// Checkpoint returns the log's newest signed checkpoint with the
// cosignatures gathered for it so far, and wakes the witnesses if it is new.
func (g *Gatherer) Checkpoint() ([]byte, error) {
	signed, err := g.log.Checkpoint()
	if err != nil {
		return nil, err
	}
	cp, err := format.OpenCheckpoint(signed, g.log.VerifierKey())
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if cp.Size > g.target || g.notes[cp.Size] == nil {
		g.observe(cp.Size, signed)
	}
	if n := g.notes[cp.Size]; n != nil {
		return n, nil
	}
	return signed, nil
}

// observe records a new log-signed checkpoint and wakes the witnesses.
// g.mu is held.
func (g *Gatherer) observe(size int64, signed []byte) {
	if g.notes[size] == nil {
		g.notes[size] = signed
	}
	if size <= g.target {
		return
	}
	g.target = size
	if size > g.quorum {
		g.waiting = append(g.waiting, seen{size, g.opts.Now()})
	}
	g.prune()
	for _, w := range g.ws {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// prune forgets checkpoints older than the newest with a quorum: they are
// neither served nor kept. g.mu is held.
func (g *Gatherer) prune() {
	for s := range g.notes {
		if s < g.quorum && s != g.latest && s != g.target {
			delete(g.notes, s)
		}
	}
}

// Run gathers cosignatures for the log given to SetLog until ctx ends.
func (g *Gatherer) Run(ctx context.Context) {
	log := g.log
	var wg sync.WaitGroup
	for _, w := range g.ws {
		wg.Go(func() { g.follow(ctx, w) })
	}
	t := time.NewTicker(g.opts.Poll)
	defer t.Stop()
	for {
		g.mu.Lock()
		target := g.target
		g.mu.Unlock()
		if log.Size() > target || target == 0 && log.Size() > 0 {
			if _, err := g.Checkpoint(); err != nil {
				g.opts.Logger.Error("cosign: cannot sign a checkpoint", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// SetLog sets the log to gather cosignatures for; call it once, before
// Run, Checkpoint or CosignedProof.
func (g *Gatherer) SetLog(log Log) { g.log = log }

// follow keeps one witness up to date with the newest checkpoint.
func (g *Gatherer) follow(ctx context.Context, w *wstate) {
	wait := time.Duration(0)
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.kick:
			timer.Stop()
		case <-timer.C:
		}
		wait = g.opts.Poll
		g.mu.Lock()
		size, signed := g.target, g.notes[g.target]
		belief, asked, next := w.size, w.asked, w.next
		g.mu.Unlock()
		if signed == nil || (asked && belief >= size) || (!asked && belief == size && g.has(size, w)) {
			continue
		}
		if d := next.Sub(g.opts.Now()); d > 0 {
			wait = d
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
		cosig, err := g.client.Cosign(cctx, w.URL, belief, size, signed, g.log.ProveConsistency)
		cancel()
		if ctx.Err() != nil {
			return
		}
		g.record(w, size, signed, cosig, err)
	}
}

// has reports whether the note of size already carries w's cosignature.
func (g *Gatherer) has(size int64, w *wstate) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := w.policy.Check(g.notes[size])
	return err == nil
}

// record takes a witness's answer for the checkpoint of size.
func (g *Gatherer) record(w *wstate, size int64, signed, cosig []byte, err error) {
	now := g.opts.Now()
	if err == nil {
		var with []byte
		if with, err = witness.AppendCosignatures(signed, cosig); err == nil {
			if _, err = w.policy.Check(with); err != nil {
				err = fmt.Errorf("its cosignature does not verify with its key: %w", err)
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	w.asked = true
	if err != nil {
		var behind *witness.BehindError
		switch {
		case errors.As(err, &behind) && behind.Size > size:
			err = fmt.Errorf("it holds a cosigned tree of size %d, beyond the log's %d: the log was rolled back or forked: %w", behind.Size, size, err)
			g.opts.Logger.Error("cosign: witness holds a larger tree", "witness", w.Name, "witness_size", behind.Size, "size", size)
		case errors.As(err, &behind):
			w.size = behind.Size
		case errors.Is(err, witness.ErrFork), errors.Is(err, witness.ErrBadProof):
			g.opts.Logger.Error("cosign: witness says this checkpoint is not consistent with what it cosigned", "witness", w.Name, "size", size, "err", err)
		}
		w.ok, w.lastErr = false, err
		w.failures++
		w.streak++
		d := min(g.opts.MaxBackoff, time.Second<<min(w.streak-1, 16))
		w.next = now.Add(d/2 + rand.N(d)) // jitter: half to one and a half times
		g.opts.Logger.Warn("cosign: witness did not cosign", "witness", w.Name, "size", size, "failures", w.streak, "retry_in", w.next.Sub(now).Round(time.Millisecond), "err", err)
		return
	}
	w.ok, w.lastErr, w.streak, w.lastOK, w.next = true, nil, 0, now, time.Time{}
	w.size = max(w.size, size)
	note := g.notes[size]
	if note == nil {
		note = signed
	}
	note, _ = witness.AppendCosignatures(note, cosig) // checked above
	g.notes[size] = note
	g.latest = max(g.latest, size)
	if _, qerr := g.policy.Check(note); qerr == nil && size > g.quorum {
		g.quorum = size
		i := 0
		for i < len(g.waiting) && g.waiting[i].size <= size {
			i++
		}
		g.waiting = g.waiting[i:]
		g.prune()
	}
	if err := g.save(); err != nil {
		g.opts.Logger.Error("cosign: cannot keep the cosigned checkpoints", "err", err)
	}
}

// save writes cosign.json. g.mu is held.
func (g *Gatherer) save() error {
	st := fileState{Quorum: string(g.notes[g.quorum]), Latest: string(g.notes[g.latest]), Witnesses: map[string]int64{}}
	if g.quorum == 0 {
		st.Quorum = ""
	}
	for _, w := range g.ws {
		st.Witnesses[w.Name] = w.size
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(g.opts.Dir, stateFile), append(b, '\n'), 0o600)
}
