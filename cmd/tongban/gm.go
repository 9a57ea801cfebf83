package main

// The gm crypto profile (docs/gm.md): SM3 digests beside SHA-256 and an
// SM2 line on every checkpoint beside Ed25519.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger"
	"tongban/ledger/gmnote"
)

// Crypto profiles, chosen per deployment.
const (
	profileStandard = "standard" // SHA-256 and Ed25519 (the default)
	profileGM       = "gm"       // and SM3 and SM2
)

// sm2KeyFile is where the gm profile's SM2 signer key lives, beside the
// Ed25519 signer.key.
func sm2KeyFile(data string) string { return filepath.Join(ledgerDir(data), "sm2.key") }

// checkProfile validates a profile name; "" is the default.
func checkProfile(p string) (string, error) {
	switch p {
	case "", profileStandard:
		return profileStandard, nil
	case profileGM:
		return profileGM, nil
	}
	return "", usageError("crypto profile %q: want %q or %q", p, profileStandard, profileGM)
}

// loadSM2Signer reads the SM2 signer key (PKCS#8 PEM) at path, creating
// it (0600, synced, never overwritten) when it does not exist yet, as the
// ledger does with its Ed25519 key.
func loadSM2Signer(path, origin string) (*gmnote.Signer, error) {
	if origin == "" {
		origin = ledger.DefaultOrigin
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		_, pemKey, err := gmnote.GenerateKey()
		if err != nil {
			return nil, err
		}
		if err := ledger.WriteKeyFile(path, strings.TrimSpace(string(pemKey))); err != nil {
			return nil, err
		}
		b = pemKey
	} else if err != nil {
		return nil, fmt.Errorf("SM2 key: %w", err)
	}
	priv, err := gmnote.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("SM2 key %s: %w", path, err)
	}
	return gmnote.NewSigner(origin, priv)
}

// gmLedgerOptions adds the SM2 co-signer to the ledger's options under the
// gm profile and returns its verifier key ("" under the standard profile).
func gmLedgerOptions(data string, cfg fileConfig, lo *ledger.Options) (string, error) {
	if cfg.CryptoProfile != profileGM {
		return "", nil
	}
	s, err := loadSM2Signer(sm2KeyFile(data), cfg.Origin)
	if err != nil {
		return "", err
	}
	lo.CoSigners = append(lo.CoSigners, note.Signer(s))
	return s.VerifierKey(), nil
}

// loadSM2VerifierKey takes an SM2 verifier key line or a file holding one.
func loadSM2VerifierKey(arg string) (string, error) {
	key, err := keyOrFile("--sm2-key", "an SM2 verifier key", arg, func(k string) error {
		_, err := gmnote.NewVerifier(k)
		return err
	})
	if err != nil {
		return "", usageError("%v", err)
	}
	return key, nil
}
