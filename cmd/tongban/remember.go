package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"tongban/gateway/bundle"
	"tongban/internal/durable"
	"tongban/ledger/format"
)

// A memory is the newest verified checkpoint of one log that this client
// has seen, kept in one file. Every checkpoint presented later must be
// consistent with it; two that are not are a fork, and both are kept as
// evidence next to the file.
type memory struct {
	path string // the file holding the remembered signed checkpoint
	vkey string // the log's verifier key
}

// openMemory names the memory of the log with key vkey: file, if given
// (--state), else one file per log origin and key under the user's
// config directory.
func openMemory(vkey, file string) (*memory, error) {
	if file == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return nil, fmt.Errorf("no place to remember checkpoints (give --state FILE): %w", err)
		}
		h := sha256.Sum256([]byte(keyName(vkey) + "\n" + vkey))
		file = filepath.Join(dir, "tongban", "checkpoints", hex.EncodeToString(h[:16]))
	}
	return &memory{path: file, vkey: vkey}, nil
}

// keyName is a note key's name, the log's origin.
func keyName(vkey string) string {
	for i := 0; i < len(vkey); i++ {
		if vkey[i] == '+' {
			return vkey[:i]
		}
	}
	return vkey
}

// load returns the remembered checkpoint (nil when there is none yet).
func (m *memory) load() ([]byte, format.Checkpoint, error) {
	b, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, format.Checkpoint{}, nil
	}
	if err != nil {
		return nil, format.Checkpoint{}, err
	}
	cp, err := format.OpenCheckpoint(b, m.vkey)
	if err != nil {
		return nil, cp, fmt.Errorf("remembered checkpoint %s: %w", m.path, err)
	}
	return b, cp, nil
}

// save replaces the remembered checkpoint, durably.
func (m *memory) save(signed []byte) error {
	if err := os.MkdirAll(filepath.Dir(m.path), 0o700); err != nil {
		return err
	}
	return durable.WriteFile(m.path, signed, 0o600)
}

// prover fetches a consistency proof between two tree sizes of the log.
type prover func(ctx context.Context, from, to int64) ([]format.Hash, error)

// forkError is a fork: two signed checkpoints of one log that are not
// consistent. Both are saved under dir.
type forkError struct {
	remembered, presented format.Checkpoint
	dir, why              string
}

func (e *forkError) Error() string {
	return fmt.Sprintf("FORK: the log %s signed two inconsistent checkpoints: size %d root %s (remembered) and size %d root %s (presented): %s; both saved in %s",
		e.remembered.Origin, e.remembered.Size, e.remembered.Root, e.presented.Size, e.presented.Root, e.why, e.dir)
}

// check holds the presented checkpoint (verified by the log key) to the
// remembered one: equal sizes must have equal roots, and the smaller tree
// must be a prefix of the larger, by a proof from prove (when nil or
// failing, or by the offline proofs given in known). It remembers the
// presented checkpoint when it is newer and consistent. It returns a note
// for the user, and a *forkError on a fork.
func (m *memory) check(ctx context.Context, presented []byte, known []bundle.ConsistencyProof, prove prover) (string, error) {
	pcp, err := format.OpenCheckpoint(presented, m.vkey)
	if err != nil {
		return "", err
	}
	old, ocp, err := m.load()
	if err != nil {
		return "", err
	}
	if old == nil {
		if err := m.save(presented); err != nil {
			return "", err
		}
		return fmt.Sprintf("first checkpoint of %s remembered (size %d) in %s", pcp.Origin, pcp.Size, m.path), nil
	}
	fork := func(why string) error {
		dir := filepath.Join(filepath.Dir(m.path), "fork-"+time.Now().UTC().Format("20060102T150405.000000000Z"))
		if err := saveFork(dir, old, presented); err != nil {
			return fmt.Errorf("a fork (%s), and its evidence could not be saved: %w", why, err)
		}
		return &forkError{remembered: ocp, presented: pcp, dir: dir, why: why}
	}
	if ocp.Size == pcp.Size {
		if ocp.Root != pcp.Root {
			return "", fork(fmt.Sprintf("two roots for size %d", ocp.Size))
		}
		return fmt.Sprintf("consistent with the remembered checkpoint (same size %d)", ocp.Size), nil
	}
	small, big := ocp, pcp
	if pcp.Size < ocp.Size {
		small, big = pcp, ocp
	}
	var proof []format.Hash
	var how string
	for _, p := range known {
		if p.From == small.Size && p.To == big.Size {
			proof, how = p.Hashes, "a proof in the evidence"
		}
	}
	if proof == nil && prove != nil {
		proof, err = prove(ctx, small.Size, big.Size)
		if err != nil {
			return fmt.Sprintf("NOT checked against the remembered checkpoint (size %d): the server gave no consistency proof: %v", ocp.Size, err), nil
		}
		how = "a proof from the server"
	}
	if proof == nil {
		return fmt.Sprintf("NOT checked against the remembered checkpoint (size %d): no consistency proof to size %d offline (give --server to ask for one)", ocp.Size, pcp.Size), nil
	}
	if err := format.CheckConsistency(proof, small.Size, small.Root, big.Size, big.Root); err != nil {
		return "", fork(fmt.Sprintf("the tree of size %d is not a prefix of the tree of size %d (%v)", small.Size, big.Size, err))
	}
	if pcp.Size > ocp.Size {
		if err := m.save(presented); err != nil {
			return "", err
		}
		return fmt.Sprintf("consistent with the remembered checkpoint (size %d, by %s); size %d now remembered", ocp.Size, how, pcp.Size), nil
	}
	return fmt.Sprintf("consistent with the newer remembered checkpoint (size %d, by %s)", ocp.Size, how), nil
}

// saveFork keeps both signed checkpoints side by side for the auditor.
func saveFork(dir string, remembered, presented []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := durable.WriteFile(filepath.Join(dir, "remembered.checkpoint"), remembered, 0o600); err != nil {
		return err
	}
	return durable.WriteFile(filepath.Join(dir, "presented.checkpoint"), presented, 0o600)
}

// serverProver asks a gateway for consistency proofs with the caller's
// credentials.
func serverProver(cf *clientFlags) prover {
	return func(ctx context.Context, from, to int64) ([]format.Hash, error) {
		q := url.Values{"from": {strconv.FormatInt(from, 10)}, "to": {strconv.FormatInt(to, 10)}}
		req, err := cf.request(ctx, "GET", "/v1/ledger/proofs/consistency?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, apiError(resp)
		}
		var p bundle.ConsistencyProof
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p); err != nil {
			return nil, err
		}
		if p.From != from || p.To != to {
			return nil, fmt.Errorf("the server proved %d to %d, not %d to %d", p.From, p.To, from, to)
		}
		return p.Hashes, nil
	}
}
