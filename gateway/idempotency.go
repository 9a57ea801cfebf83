package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"time"

	"tongban/ledger"
)

// IdempotencyTTL is how long an Idempotency-Key is remembered.
const IdempotencyTTL = 24 * time.Hour

// Idempotency describes a request made under an Idempotency-Key. Scope is
// a digest of the key and who sent it where. The request's fingerprint is
// what a retry must match: for a JSON body, the digest of its canonical
// form (JSON); for a multipart body, the digest of each part's form name,
// file name and content digest, in order, as the gateway reads them (so a
// client may pick a new boundary when it retries).
//
// The request's workflow entry carries scope and fingerprint in its payload
// ("idem"), so the ledger itself says which keys were used: a retry after a
// crash that came between the append and the answer is still recognised.
type Idempotency struct {
	Scope string
	JSON  []byte // canonical JSON body; nil for multipart requests
	parts hash.Hash
}

// Fingerprint returns the request's fingerprint.
func (i *Idempotency) Fingerprint() string {
	if i.JSON != nil {
		s := sha256.Sum256(i.JSON)
		return hex.EncodeToString(s[:])
	}
	if i.parts == nil {
		i.parts = sha256.New()
	}
	return hex.EncodeToString(i.parts.Sum(nil))
}

// notePart adds one part to the request's fingerprint. It does
// nothing on a nil Idempotency: a request without a key.
func (idem *Idempotency) notePart(name, filename, sum string) {
	if idem == nil || idem.JSON != nil {
		return
	}
	if idem.parts == nil {
		idem.parts = sha256.New()
	}
	fmt.Fprintf(idem.parts, "%q %q %s\n", name, filename, sum)
}

// FingerprintParts reads an upload's parts and returns their fingerprint
// as Idempotency computes it, for comparing a retry with its original.
func FingerprintParts(ps Parts) (string, error) {
	idem := &Idempotency{parts: sha256.New()}
	for {
		part, err := nextPart(ps)
		if err == io.EOF {
			return idem.Fingerprint(), nil
		}
		if err != nil {
			return "", err
		}
		h := sha256.New()
		if _, err := io.Copy(h, part.Body); err != nil {
			return "", fmt.Errorf("%w: body: %w", ErrMalformed, err)
		}
		idem.notePart(part.Name, part.Filename, hex.EncodeToString(h.Sum(nil)))
	}
}

// Replay is the remembered outcome of an idempotent request.
type Replay struct {
	Fingerprint string    `json:"fingerprint"`
	Packet      string    `json:"packet"`
	Seq         int64     `json:"seq"`
	Status      int       `json:"status"` // the HTTP status it was answered with
	Time        time.Time `json:"time"`
}

type idemPayload struct {
	Key  string `json:"key"`
	Body string `json:"body"`
}

// Remembered returns the outcome of an earlier request with the same scope.
func (g *Gateway) Remembered(scope string) (*Replay, bool) {
	var r Replay
	if !g.state.getReplay(scope, &r) {
		return nil, false
	}
	return &r, true
}

// replayOf is what a retry of the request that made rec gets back.
func replayOf(rec *ledger.Record, fingerprint string) Replay {
	status := 200
	if rec.Type == EntrySubmitted {
		status = 201
	}
	return Replay{Fingerprint: fingerprint, Packet: rec.Packet, Seq: rec.Seq, Status: status, Time: rec.Time}
}

// ErrIdempotencyMismatch is a key reused with another body (422).
var ErrIdempotencyMismatch = fmt.Errorf("%w: Idempotency-Key already used with a different request body", ErrInvalid)
