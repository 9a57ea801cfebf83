// Package witness is a C2SP tlog-witness: a party that remembers the latest
// checkpoint it cosigned for each log it follows and cosigns a new one
// only if it is consistent with it, so that a log cannot show two
// histories without one of them lacking the witnesses' cosignatures.
//
// It also holds the client side: AddCheckpoint asks a witness for a
// cosignature, and Policy checks the cosignatures on a checkpoint.
// The package knows checkpoints, consistency proofs and signed notes, and
// nothing of what the log records.
//
// Protocols: C2SP tlog-witness (POST /add-checkpoint), tlog-checkpoint,
// signed-note, and tlog-cosignature's cosignature/v1 (Ed25519, signature
// type 0x04, a timestamp in every cosignature).
//
// A witness's data directory holds:
//
//   - witness.key: its secret key (mode 0600). Lost, the witness needs a
//     new key, and every verifier's policy must change.
//   - state.json: for each log, the size and root of the latest checkpoint
//     it cosigned. It is replaced atomically (write, fsync, rename, fsync
//     of the directory) before a cosignature leaves the process, so a crash
//     at any point leaves the old or the new state, and never a state older
//     than a cosignature given out. A directory with a key and no state is
//     refused: a witness that forgot what it cosigned could cosign a fork.
//     Never restore an older copy: the witness could then cosign a second
//     root for a size it had already cosigned.
//   - evidence/: checkpoints signed by a log that the witness refused (a
//     root that differs at a size it cosigned, or a proof that does not
//     verify). Each may prove the log misbehaved; keep them.
//   - lock: held while a witness runs, so two never share one state.
package witness

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/format"
)

// Limits on a request, from the protocol (proof lines) and to bound work.
const (
	maxProofLines = 63
	maxBody       = 64 << 10
)

var (
	// ErrUnknownLog: the checkpoint's origin is not a log the witness follows (404).
	ErrUnknownLog = errors.New("witness: unknown log")
	// ErrBadSignature: no signature on the checkpoint verifies with the log's key (403).
	ErrBadSignature = errors.New("witness: checkpoint is not signed by the log's key")
	// ErrBadProof: the consistency proof does not verify (422).
	ErrBadProof = errors.New("witness: consistency proof does not verify")
	// ErrFork: the witness cosigned a different root for the same size (409).
	ErrFork = errors.New("witness: a different root was cosigned for this size")
	// ErrMalformed: the request does not parse (400).
	ErrMalformed = errors.New("witness: malformed request")
	// ErrLocked: another process runs a witness on the same directory.
	ErrLocked = errors.New("witness: data directory in use by another process")
)

// BehindError is the witness's answer (409) when the old size sent is not
// the size of the latest checkpoint it cosigned for the log: the caller
// should prove consistency from Size instead.
type BehindError struct {
	Size int64 // the size the witness last cosigned
}

func (e *BehindError) Error() string {
	return fmt.Sprintf("witness: behind: witness knows size %d", e.Size)
}

var base64Strict = base64.StdEncoding.Strict()

// Options configure Open. The zero value of every field but Dir and Logs
// means its default.
type Options struct {
	// Dir holds the witness key and state; created on first use.
	Dir string
	// Name names a key created on first use (default: derived from the key).
	Name string
	// Logs are the note verifier keys of the logs to witness; each key's
	// name is its log's origin. Several keys may share an origin.
	Logs []string
	// Logger receives forks and failures (default: slog.Default()).
	Logger *slog.Logger
	// Now is the clock for cosignature timestamps (default time.Now).
	Now func() time.Time
}

// Witness cosigns checkpoints. Its methods are safe for concurrent use.
type Witness struct {
	dir    string
	signer *Signer
	logs   map[string][]note.Verifier
	log    *slog.Logger
	lock   *os.File

	mu     sync.Mutex // serialises the check and the update of st
	st     *state
	failed error // a state write failed: st may not be what the disk holds
}

// Open loads (or on first use creates) the witness in opts.Dir and locks
// the directory.
func Open(opts Options) (*Witness, error) {
	if opts.Dir == "" {
		return nil, errors.New("witness: Options.Dir is required")
	}
	if len(opts.Logs) == 0 {
		return nil, errors.New("witness: no logs to witness")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Witness{dir: opts.Dir, log: opts.Logger, logs: map[string][]note.Verifier{}}
	for _, k := range opts.Logs {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("witness: log key %q: %w", k, err)
		}
		w.logs[v.Name()] = append(w.logs[v.Name()], v)
	}
	signer, err := LoadOrCreateKey(opts.Dir, opts.Name)
	if err != nil {
		return nil, err
	}
	signer.Now = opts.Now
	w.signer = signer
	if w.lock, err = lockDir(opts.Dir); err != nil {
		return nil, err
	}
	if w.st, err = readState(opts.Dir); err != nil {
		unlockDir(w.lock)
		return nil, err
	}
	return w, nil
}

// Close releases the directory.
func (w *Witness) Close() error { return unlockDir(w.lock) }

// VerifierKey returns the witness's cosignature verifier key.
func (w *Witness) VerifierKey() string { return w.signer.Verifier().String() }

// Latest returns the size and root of the latest checkpoint cosigned for
// origin (size 0 and ok false when none was).
func (w *Witness) Latest(origin string) (size int64, root format.Hash, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ls, ok := w.st.Logs[origin]
	return ls.Size, ls.Root, ok
}

// AddCheckpoint cosigns the signed checkpoint if it is consistent with the
// latest one cosigned for its log, whose size must be oldSize (else a
// *BehindError), and returns the cosignature line(s). The new state is
// durable before AddCheckpoint returns. Its errors are this package's.
func (w *Witness) AddCheckpoint(oldSize int64, proof []format.Hash, signed []byte) ([]byte, error) {
	origin, _, _ := strings.Cut(string(signed), "\n")
	vs, ok := w.logs[origin]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownLog, origin)
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, ErrBadSignature
		}
		return nil, fmt.Errorf("%w: checkpoint: %v", ErrMalformed, err)
	}
	cp, err := format.ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if oldSize < 0 || oldSize > cp.Size {
		return nil, fmt.Errorf("%w: old size %d is beyond the checkpoint's size %d", ErrMalformed, oldSize, cp.Size)
	}
	if (oldSize == 0 || oldSize == cp.Size) && len(proof) != 0 {
		return nil, fmt.Errorf("%w: a proof from size %d to %d must be empty", ErrMalformed, oldSize, cp.Size)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		return nil, fmt.Errorf("witness: refusing to cosign after a failed state write (restart it): %w", w.failed)
	}
	known, seen := w.st.Logs[origin]
	if oldSize != known.Size {
		return nil, &BehindError{Size: known.Size}
	}
	switch {
	case seen && oldSize == cp.Size:
		if cp.Root != known.Root {
			w.evidence(signed, "fork: a different root for a size already cosigned", cp, known)
			return nil, fmt.Errorf("%w: size %d", ErrFork, cp.Size)
		}
	case oldSize > 0:
		if err := format.CheckConsistency(proof, oldSize, known.Root, cp.Size, cp.Root); err != nil {
			w.evidence(signed, "consistency proof does not verify", cp, known)
			return nil, fmt.Errorf("%w: from %d to %d", ErrBadProof, oldSize, cp.Size)
		}
	}
	if !seen || cp.Size > known.Size {
		next := &state{Logs: make(map[string]logState, len(w.st.Logs)+1)}
		for k, v := range w.st.Logs {
			next.Logs[k] = v
		}
		next.Logs[origin] = logState{Size: cp.Size, Root: cp.Root}
		if err := writeState(w.dir, next); err != nil {
			// The file may hold either state now; only a restart, which
			// reads it, can tell which. Refuse until then.
			w.log.Error("witness: cannot record a checkpoint; restart the witness", "origin", origin, "size", cp.Size, "err", err)
			w.failed = err
			return nil, err
		}
		w.st = next
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, err
	}
	return cosigned[len(n.Text)+1:], nil
}

// evidence keeps a refused checkpoint that carries the log's valid
// signature: it may prove the log misbehaved.
func (w *Witness) evidence(signed []byte, why string, cp format.Checkpoint, known logState) {
	sum := sha256.Sum256(signed)
	dir := filepath.Join(w.dir, "evidence")
	name := fmt.Sprintf("%d-%s.checkpoint", cp.Size, hex.EncodeToString(sum[:8]))
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = writeFile(dir, name, signed, false)
	}
	w.log.Warn("witness: refused a checkpoint signed by the log: "+why,
		"origin", cp.Origin, "size", cp.Size, "root", cp.Root.String(),
		"cosigned_size", known.Size, "cosigned_root", known.Root.String(),
		"evidence", filepath.Join(dir, name), "evidence_err", err)
}

// ServeHTTP answers POST /add-checkpoint as C2SP tlog-witness specifies.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	if r.Method != http.MethodPost {
		rw.Header().Set("Allow", http.MethodPost)
		http.Error(rw, "use POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(rw, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(rw, "cannot read request", http.StatusBadRequest)
		return
	}
	oldSize, proof, signed, err := ParseRequest(body)
	var cosig []byte
	if err == nil {
		cosig, err = w.AddCheckpoint(oldSize, proof, signed)
	}
	var behind *BehindError
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(cosig)
	case errors.As(err, &behind):
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", behind.Size)
	case errors.Is(err, ErrFork):
		// The sizes agree but the roots do not: the protocol answers 409
		// with the size, which is then the old size the caller sent.
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", oldSize)
	case errors.Is(err, ErrUnknownLog):
		http.Error(rw, "unknown log", http.StatusNotFound)
	case errors.Is(err, ErrBadSignature):
		http.Error(rw, "checkpoint not signed by a known key of the log", http.StatusForbidden)
	case errors.Is(err, ErrBadProof):
		http.Error(rw, "consistency proof does not verify", http.StatusUnprocessableEntity)
	case errors.Is(err, ErrMalformed):
		http.Error(rw, err.Error(), http.StatusBadRequest)
	default:
		w.log.Error("witness: add-checkpoint", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
	}
}

// FormatRequest returns the body of an add-checkpoint request.
func FormatRequest(oldSize int64, proof []format.Hash, signed []byte) []byte {
	b := fmt.Appendf(nil, "old %d\n", oldSize)
	for _, h := range proof {
		b = append(b, h.String()...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, signed...)
}

// ParseRequest parses the body of an add-checkpoint request. Its errors
// wrap ErrMalformed.
func ParseRequest(body []byte) (oldSize int64, proof []format.Hash, signed []byte, err error) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return 0, nil, nil, fmt.Errorf("%w: no blank line before the checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	n, ok := strings.CutPrefix(lines[0], "old ")
	if ok {
		oldSize, err = strconv.ParseInt(n, 10, 64)
	}
	if !ok || err != nil || oldSize < 0 || strconv.FormatInt(oldSize, 10) != n {
		return 0, nil, nil, fmt.Errorf("%w: first line must be \"old <size>\"", ErrMalformed)
	}
	if len(lines)-1 > maxProofLines {
		return 0, nil, nil, fmt.Errorf("%w: more than %d proof lines", ErrMalformed, maxProofLines)
	}
	for _, l := range lines[1:] {
		h, err := parseHash(l)
		if err != nil {
			return 0, nil, nil, fmt.Errorf("%w: proof line %q is not a base64 hash", ErrMalformed, l)
		}
		proof = append(proof, h)
	}
	return oldSize, proof, signed, nil
}

func parseHash(s string) (format.Hash, error) {
	var h format.Hash
	b, err := base64Strict.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, errors.New("bad hash")
	}
	copy(h[:], b)
	return h, nil
}
