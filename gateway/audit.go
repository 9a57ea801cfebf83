package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tongban/gateway/bundle"
	"tongban/ledger"
)

// The auditor's read-only view of the ledger: entries, proofs, checkpoints
// and the full check. Every call but the public key and checkpoint is for
// auditors only.

// InclusionProof is an RFC 6962 audit path, as served and bundled.
type InclusionProof = bundle.InclusionProof

// ConsistencyProof proves the tree of size From is a prefix of size To.
type ConsistencyProof = bundle.ConsistencyProof

// LedgerKey returns the log's note verifier key.
func (g *Gateway) LedgerKey() string { return g.cfg.Ledger.VerifierKey() }

// Checkpoint returns a signed checkpoint covering every acknowledged entry.
func (g *Gateway) Checkpoint() ([]byte, error) { return g.cfg.Ledger.Checkpoint() }

func auditorOnly(who Principal) error {
	if who.Role != RoleAuditor {
		return fmt.Errorf("%w: ledger records are for auditors", ErrForbidden)
	}
	return nil
}

// Entry returns one ledger entry, for auditors.
func (g *Gateway) Entry(who Principal, seq int64) (*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	rec, err := g.cfg.Ledger.Get(seq)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: seq %d", ErrNotFound, seq)
	}
	return rec, err
}

// PacketEntries returns a packet's ledger entries, for auditors.
func (g *Gateway) PacketEntries(who Principal, packet string) ([]*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	if !validPacketID(packet) {
		return nil, fieldError(ErrMalformed, "packet", "not a packet id")
	}
	return g.cfg.Ledger.ByPacket(packet)
}

// Inclusion proves entry seq in the tree of the given size, for auditors.
func (g *Gateway) Inclusion(who Principal, seq, size int64) (*InclusionProof, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	h, err := g.cfg.Ledger.ProveInclusion(seq, size)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return &InclusionProof{Seq: seq, Size: size, Hashes: h}, nil
}

// Consistency proves the tree of size from is a prefix of size to, for auditors.
func (g *Gateway) Consistency(who Principal, from, to int64) (*ConsistencyProof, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	h, err := g.cfg.Ledger.ProveConsistency(from, to)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	return &ConsistencyProof{From: from, To: to, Hashes: h}, nil
}

// VerifyReport is the result of VerifyLedger.
type VerifyReport struct {
	OK          bool          `json:"ok"`
	Size        int64         `json:"size"`
	Root        ledger.Hash   `json:"root"`
	Checkpoints int           `json:"checkpoints"`
	FirstBadSeq *int64        `json:"first_bad_seq,omitempty"`
	Error       string        `json:"error,omitempty"`
	Took        time.Duration `json:"took_ns"`
}

// VerifyLedger runs the ledger's full check, for auditors.
func (g *Gateway) VerifyLedger(ctx context.Context, who Principal, progress func(done, total int64)) (*VerifyReport, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	start := time.Now()
	rep, err := g.cfg.Ledger.Verify(ctx, progress)
	out := &VerifyReport{OK: err == nil, Size: rep.Size, Root: rep.Root, Checkpoints: rep.Checkpoints, Took: time.Since(start)}
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		out.FirstBadSeq, out.Error = &ve.Seq, ve.Error()
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LedgerSize returns the number of acknowledged ledger entries.
func (g *Gateway) LedgerSize() int64 { return g.cfg.Ledger.Size() }

// EntryRange returns up to limit entries from seq from on, for auditors.
func (g *Gateway) EntryRange(ctx context.Context, who Principal, from, limit int64) ([]*ledger.Record, error) {
	if err := auditorOnly(who); err != nil {
		return nil, err
	}
	var out []*ledger.Record
	errStop := errors.New("stop")
	err := g.cfg.Ledger.Scan(ctx, from, func(r *ledger.Record) error {
		out = append(out, r)
		if int64(len(out)) >= limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}
