package witness

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"tongban/internal/durable"
	"tongban/ledger/format"
)

// Files in a witness's data directory.
const (
	keyFile   = "witness.key" // the signer key, mode 0600
	stateFile = "state.json"  // the latest cosigned checkpoint of each log
)

// logState is what a witness remembers of one log: the size and root of
// the latest checkpoint it cosigned.
type logState struct {
	Size int64       `json:"size"`
	Root format.Hash `json:"root"`
}

// state is the content of state.json.
type state struct {
	Logs map[string]logState `json:"logs"`
}

// LoadOrCreateKey returns the witness signer key in dir, creating the
// directory, an empty state and a new key named name (or, if name is
// empty, "tongban-witness-" and the first hex digits of the public key)
// on first use. The state is created before the key, so a directory with a
// key and no state is one whose state was lost: Open refuses it.
func LoadOrCreateKey(dir, name string) (*Signer, error) {
	b, err := os.ReadFile(filepath.Join(dir, keyFile))
	if err == nil {
		s, err := NewSigner(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("witness: key file %s: %w", filepath.Join(dir, keyFile), err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("witness: read key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); errors.Is(err, fs.ErrNotExist) {
		if err := writeState(dir, &state{Logs: map[string]logState{}}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("witness: %w", err)
	}
	skey, err := newKey(name)
	if err != nil {
		return nil, err
	}
	if err := writeFile(dir, keyFile, []byte(skey+"\n"), true); err != nil {
		return nil, err
	}
	return NewSigner(skey)
}

// newKey makes a signer key; an empty name is derived from the key.
func newKey(name string) (string, error) {
	if name != "" {
		skey, _, err := GenerateKey(name)
		return skey, err
	}
	skey, _, err := GenerateKey("x")
	if err != nil {
		return "", err
	}
	s, err := NewSigner(skey)
	if err != nil {
		return "", err
	}
	pub := s.priv.Public().(ed25519.PublicKey)
	name = fmt.Sprintf("tongban-witness-%x", pub[:4])
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, keyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignatureV1}, s.priv.Seed()...))), nil
}

// readState loads state.json; its absence is an error (see LoadOrCreateKey).
func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("witness: %s has a key but no %s: the record of what this witness cosigned is lost; refusing to run, as it could cosign a fork", dir, stateFile)
		}
		return nil, fmt.Errorf("witness: read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("witness: %s is corrupt: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Logs == nil {
		st.Logs = map[string]logState{}
	}
	return &st, nil
}

// writeState replaces state.json atomically and durably.
func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(dir, stateFile, append(b, '\n'), false)
}

// writeFile writes name in dir atomically and durably, mode 0600. With
// exclusive, an existing file is never replaced.
func writeFile(dir, name string, data []byte, exclusive bool) error {
	write := durable.WriteFile
	if exclusive {
		write = durable.WriteNew
	}
	if err := write(filepath.Join(dir, name), data, 0o600); err != nil {
		return fmt.Errorf("witness: write %s: %w", name, err)
	}
	return nil
}
