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
	rec, err := g.receiptEntry(who, id, seq)
	if err != nil {
		return nil, err
	}
	return g.receiptOf(rec)
}

// WitnessedReceipt is Receipt proven into the newest checkpoint that a
// quorum of the log's witnesses cosigned and that holds the entry, so a
// verifier can hold it to a witness policy. It waits (up to cosignWait) for
// the witnesses to cosign a tree that holds the entry; without witnesses
// configured it is ErrUnavailable.
func (g *Gateway) WitnessedReceipt(ctx context.Context, who Principal, id string, seq int64) ([]byte, error) {
	rec, err := g.receiptEntry(who, id, seq)
	if err != nil {
		return nil, err
	}
	if g.cfg.Cosigned == nil {
		return nil, fmt.Errorf("%w: this gateway has no witnesses; its receipts are signed by the log key alone", ErrUnavailable)
	}
	wctx, cancel := context.WithTimeout(ctx, cosignWait)
	signed, _, err := g.cfg.Cosigned(wctx, rec.Seq+1)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: no checkpoint cosigned by a quorum of the witnesses holds entry %d yet: %w", ErrUnavailable, rec.Seq, err)
	}
	cp, err := format.ParseCheckpoint(checkpointText(signed))
	if err != nil {
		return nil, fmt.Errorf("%w: cosigned checkpoint: %w", ErrUnavailable, err)
	}
	hashes, err := g.cfg.Ledger.ProveInclusion(rec.Seq, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: inclusion proof for a receipt: %w", ErrUnavailable, err)
	}
	return format.Receipt{Index: rec.Seq, Extra: rec.Raw, Hashes: hashes, Checkpoint: signed}.Marshal(), nil
}

// receiptEntry returns the packet's entry at seq, if who may see the packet.
func (g *Gateway) receiptEntry(who Principal, id string, seq int64) (*ledger.Record, error) {
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
	return rec, nil
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
