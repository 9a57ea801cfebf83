package gateway

import (
	"context"
	"errors"
	"fmt"

	"tongban/ledger"
	"tongban/ledger/format"
)

// Receipt returns the receipt of the packet's entry at seq: a C2SP
// tlog-proof carrying the entry's canonical bytes, its inclusion proof and
// a checkpoint signed at exactly seq+1, so the same entry always gets the
// same receipt and the receipt shows the log as it stood when the entry was
// appended. The packet's origin, its destination and auditors may have it;
// a seq of another packet is not found, whoever asks.
func (g *Gateway) Receipt(ctx context.Context, who Principal, id string, seq int64) ([]byte, error) {
	if _, err := g.packetFor(who, id); err != nil {
		return nil, err
	}
	rec, err := g.cfg.Ledger.Get(seq)
	if errors.Is(err, ledger.ErrNotFound) || err == nil && rec.Packet != id {
		return nil, fmt.Errorf("%w: packet %s has no entry %d", ErrNotFound, id, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return g.receiptOf(rec)
}

func (g *Gateway) receiptOf(rec *ledger.Record) ([]byte, error) {
	signed, err := g.cfg.Ledger.CheckpointAt(rec.Seq + 1)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint for a receipt: %w", ErrUnavailable, err)
	}
	hashes, err := g.cfg.Ledger.ProveInclusion(rec.Seq, rec.Seq+1)
	if err != nil {
		return nil, fmt.Errorf("%w: inclusion proof for a receipt: %w", ErrUnavailable, err)
	}
	return format.Receipt{Index: rec.Seq, Extra: rec.Raw, Hashes: hashes, Checkpoint: signed}.Marshal(), nil
}
