package cosign

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"tongban/ledger/format"
	"tongban/ledger/witness"
)

// ErrQuorumUnreachable is wrapped by Ready and WriteErr.
var ErrQuorumUnreachable = errors.New("cosign: the witness quorum is not reachable")

// Ready reports whether a quorum of witnesses answers: nil when no quorum
// is needed, when the newest checkpoint has its quorum, or when at least
// quorum witnesses cosigned at their latest request.
func (g *Gatherer) Ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opts.Quorum == 0 || g.quorum >= g.target {
		return nil
	}
	ok := 0
	var bad []string
	for _, w := range g.ws {
		switch {
		case w.ok:
			ok++
		case w.lastErr != nil:
			bad = append(bad, w.Name+": "+w.lastErr.Error())
		default:
			bad = append(bad, w.Name+": not asked yet")
		}
	}
	if ok >= g.opts.Quorum {
		return nil
	}
	return fmt.Errorf("%w: %d of %d witnesses cosign, %d needed (%s)", ErrQuorumUnreachable, ok, len(g.ws), g.opts.Quorum, strings.Join(bad, "; "))
}

// WriteErr returns an error when entries have waited longer than the
// grace for a quorum of cosignatures: the gateway then refuses writes
// until the witnesses catch up, so that no more evidence is handed out
// that no one else has seen.
func (g *Gatherer) WriteErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opts.Quorum == 0 || len(g.waiting) == 0 {
		return nil
	}
	if wait := g.opts.Now().Sub(g.waiting[0].at); wait > g.opts.Grace {
		return fmt.Errorf("%w: entries since tree size %d have waited %s for %d cosignatures (grace %s)",
			ErrQuorumUnreachable, g.quorum, wait.Round(time.Second), g.opts.Quorum, g.opts.Grace)
	}
	return nil
}

// WitnessStatus is one witness's figures, for metrics.
type WitnessStatus struct {
	Name     string
	Lag      int64 // entries between the newest checkpoint and what it last cosigned
	Failures int64 // failed requests since start
	OK       bool  // its latest answer was a valid cosignature
	LastOK   time.Time
}

// Status returns each witness's figures and the sizes of the newest
// checkpoint and of the newest with a quorum.
func (g *Gatherer) Status() (ws []WitnessStatus, target, quorum int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, w := range g.ws {
		ws = append(ws, WitnessStatus{Name: w.Name, Lag: max(0, g.target-w.size), Failures: w.failures, OK: w.ok, LastOK: w.lastOK})
	}
	return ws, g.target, g.quorum
}

// Quorum returns how many cosignatures a checkpoint needs.
func (g *Gatherer) Quorum() int { return g.opts.Quorum }

// Tree is what the start check needs of a ledger (one opened read-only
// will do: the check signs nothing).
type Tree interface {
	Size() int64
	TreeHash(size int64) (format.Hash, error)
	StoredCheckpoint() (format.Checkpoint, []byte, error)
	ProveConsistency(from, to int64) ([]format.Hash, error)
}

// ForkError is the start check's refusal: the stored tree is not the one
// that was cosigned.
type ForkError struct {
	Size     int64    // the stored tree's size
	Evidence []string // one line per source that disagrees
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("cosign: the stored tree (size %d) is not consistent with what was cosigned; refusing to sign a second history: %s",
		e.Size, strings.Join(e.Evidence, "; "))
}

// CheckStart checks the stored tree against the checkpoints cosigned
// before (kept in cosign.json) and against every witness that answers
// within the timeout: a witness that cosigned a larger tree than the
// newest checkpoint the log still holds, or that finds that checkpoint
// inconsistent with what it cosigned, means the tree was rewritten or
// rolled back. It signs nothing; witnesses that answer are asked to
// cosign the stored checkpoint, which catches them up.
func (g *Gatherer) CheckStart(ctx context.Context, t Tree) error {
	size := t.Size()
	fe := &ForkError{Size: size}
	g.mu.Lock()
	for s, n := range g.notes {
		cp, err := format.ParseCheckpoint(checkpointText(n))
		if err != nil {
			fe.Evidence = append(fe.Evidence, fmt.Sprintf("cosigned checkpoint of size %d unreadable: %v", s, err))
			continue
		}
		if cp.Size > size {
			fe.Evidence = append(fe.Evidence, fmt.Sprintf("witnesses cosigned tree size %d, but the ledger holds only %d entries (rolled back)", cp.Size, size))
			continue
		}
		if root, err := t.TreeHash(cp.Size); err != nil || root != cp.Root {
			fe.Evidence = append(fe.Evidence, fmt.Sprintf("witnesses cosigned tree size %d with root %s, the stored tree of that size has root %s (entries before seq %d were rewritten)",
				cp.Size, cp.Root, root, cp.Size))
		}
	}
	g.mu.Unlock()
	if len(fe.Evidence) > 0 {
		return fe
	}
	cp, signed, err := t.StoredCheckpoint()
	if err != nil {
		return err
	}
	if signed == nil {
		for _, w := range g.ws {
			if w.size > 0 {
				fe.Evidence = append(fe.Evidence, fmt.Sprintf("witness %s cosigned tree size %d, but the ledger holds no signed checkpoint", w.Name, w.size))
			}
		}
		if len(fe.Evidence) > 0 {
			return fe
		}
		return nil
	}
	if root, err := t.TreeHash(cp.Size); err != nil || root != cp.Root {
		return &ForkError{Size: size, Evidence: []string{fmt.Sprintf("the log's own checkpoint of size %d does not match the stored tree", cp.Size)}}
	}
	g.mu.Lock()
	g.observe(cp.Size, signed)
	g.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, w := range g.ws {
		wg.Go(func() {
			g.mu.Lock()
			belief := w.size
			g.mu.Unlock()
			cctx, cancel := context.WithTimeout(ctx, g.opts.Timeout)
			cosig, err := g.client.Cosign(cctx, w.URL, belief, cp.Size, signed, t.ProveConsistency)
			cancel()
			var behind *witness.BehindError
			var line string
			switch {
			case errors.As(err, &behind) && behind.Size > cp.Size:
				line = fmt.Sprintf("witness %s cosigned tree size %d, but the newest checkpoint the ledger holds is of size %d (tree size %d): a newer checkpoint was deleted or the ledger rolled back",
					w.Name, behind.Size, cp.Size, size)
			case errors.Is(err, witness.ErrFork), errors.Is(err, witness.ErrBadProof):
				line = fmt.Sprintf("witness %s refuses the ledger's checkpoint of size %d as inconsistent with the tree it cosigned: %v", w.Name, cp.Size, err)
			}
			if line != "" {
				mu.Lock()
				fe.Evidence = append(fe.Evidence, line)
				mu.Unlock()
				return
			}
			if err != nil {
				g.opts.Logger.Warn("cosign: witness not reachable at start; it is checked when it answers", "witness", w.Name, "err", err)
			}
			g.record(w, cp.Size, signed, cosig, err)
		})
	}
	wg.Wait()
	if len(fe.Evidence) > 0 {
		return fe
	}
	return nil
}
