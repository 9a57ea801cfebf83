package witness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"tongban/ledger/format"
)

// Client asks witnesses for cosignatures. The zero value uses
// http.DefaultClient; set a timeout through the context or HTTP.
type Client struct {
	HTTP *http.Client
}

// AddCheckpoint asks the witness at witnessURL (its submission prefix) to
// cosign the signed checkpoint, proving it consistent with the tree of
// oldSize, and returns the witness's cosignature line(s), unverified:
// check them with a Policy. Refusals are this package's errors: a
// *BehindError when the witness's latest cosigned size is not oldSize,
// ErrFork, ErrBadProof, ErrUnknownLog, ErrBadSignature, ErrMalformed.
func AddCheckpoint(ctx context.Context, witnessURL string, oldSize int64, proof []format.Hash, signed []byte) ([]byte, error) {
	return (&Client{}).AddCheckpoint(ctx, witnessURL, oldSize, proof, signed)
}

// AddCheckpoint is the package's AddCheckpoint with c's HTTP client.
func (c *Client) AddCheckpoint(ctx context.Context, witnessURL string, oldSize int64, proof []format.Hash, signed []byte) ([]byte, error) {
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	url := strings.TrimSuffix(witnessURL, "/") + "/add-checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(FormatRequest(oldSize, proof, signed)))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", witnessURL, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", witnessURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("witness %s: read answer: %w", witnessURL, err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("witness %s: answer longer than %d bytes", witnessURL, maxBody)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if err := checkSignatureLines(body); err != nil {
			return nil, fmt.Errorf("witness %s: %w", witnessURL, err)
		}
		return body, nil
	case http.StatusConflict:
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		n, err := strconv.ParseInt(strings.TrimSuffix(string(body), "\n"), 10, 64)
		if mt != "text/x.tlog.size" || err != nil || n < 0 {
			return nil, fmt.Errorf("witness %s: 409 without a tree size: %q", witnessURL, short(body))
		}
		if n == oldSize {
			// The only conflict at the size we sent: a different root.
			return nil, fmt.Errorf("witness %s: %w: size %d", witnessURL, ErrFork, n)
		}
		return nil, fmt.Errorf("witness %s: %w", witnessURL, &BehindError{Size: n})
	}
	var sentinel error
	switch resp.StatusCode {
	case http.StatusNotFound:
		sentinel = ErrUnknownLog
	case http.StatusForbidden:
		sentinel = ErrBadSignature
	case http.StatusUnprocessableEntity:
		sentinel = ErrBadProof
	case http.StatusBadRequest:
		sentinel = ErrMalformed
	default:
		return nil, fmt.Errorf("witness %s: HTTP %d: %s", witnessURL, resp.StatusCode, short(body))
	}
	return nil, fmt.Errorf("witness %s: %w (%s)", witnessURL, sentinel, short(body))
}

// Cosign asks the witness to cosign signed, a checkpoint of size size,
// proving consistency from oldSize, the size the caller believes the
// witness holds. When the witness holds another size not beyond size (it
// missed checkpoints, or its answer was lost), Cosign tries once more
// from that size. prove returns the log's consistency proof between two sizes. A
// witness ahead of the checkpoint still yields a *BehindError.
func (c *Client) Cosign(ctx context.Context, witnessURL string, oldSize, size int64, signed []byte,
	prove func(from, to int64) ([]format.Hash, error)) ([]byte, error) {
	if oldSize > size {
		oldSize = 0 // the witness answers with the size it holds
	}
	for try := 0; ; try++ {
		p, err := prove(oldSize, size)
		if err != nil {
			return nil, err
		}
		cosig, err := c.AddCheckpoint(ctx, witnessURL, oldSize, p, signed)
		var behind *BehindError
		if try > 0 || !errors.As(err, &behind) || behind.Size > size {
			return cosig, err
		}
		oldSize = behind.Size
	}
}

// checkSignatureLines checks that b is one or more note signature lines.
func checkSignatureLines(b []byte) error {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return errors.New("answer is not signature lines")
	}
	for _, l := range strings.Split(string(b[:len(b)-1]), "\n") {
		if _, _, _, err := parseSignatureLine(l); err != nil {
			return err
		}
	}
	return nil
}

// AppendCosignatures returns the signed note with the signature lines in
// cosigs added, each once (lines it already has are skipped).
func AppendCosignatures(signed []byte, cosigs ...[]byte) ([]byte, error) {
	_, sigs, err := splitNote(signed)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(signed)
	have := map[string]bool{}
	for _, l := range sigs {
		have[l] = true
	}
	for _, c := range cosigs {
		if err := checkSignatureLines(c); err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
		for _, l := range strings.SplitAfter(string(c), "\n") {
			if l != "" && !have[strings.TrimSuffix(l, "\n")] {
				have[strings.TrimSuffix(l, "\n")] = true
				out = append(out, l...)
			}
		}
	}
	return out, nil
}

func short(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
