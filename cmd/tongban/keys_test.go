package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"tongban/api"
	"tongban/ledger"
)

func TestKeygen(t *testing.T) {
	out := filepath.Join(t.TempDir(), "signer.key")
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"keygen", "--origin", "qingpu.example/log", "--out", out}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	skey, _ := os.ReadFile(out)
	vkey := regexp.MustCompile(`verifier key: (\S+)`).FindStringSubmatch(stdout.String())[1]
	if derived, err := ledger.VerifierKey(strings.TrimSpace(string(skey))); err != nil || derived != vkey {
		t.Fatalf("printed verifier key %q, the signer key's is %q (%v)", vkey, derived, err)
	}
	s, _ := note.NewSigner(strings.TrimSpace(string(skey)))
	v, _ := note.NewVerifier(vkey)
	msg, _ := note.Sign(&note.Note{Text: "qingpu.example/log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}, s)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	// Never overwrites a key.
	if err := run(context.Background(), []string{"keygen", "--out", out}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
}

func TestTokenNew(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"token", "new", "--agency", "qingpu-amr", "--role", "reviewer"}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`token:\s+(\S+)\ncredential: (\{.*\})`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("output %q", stdout.String())
	}
	var c api.Credential
	if err := json.Unmarshal([]byte(m[2]), &c); err != nil || c.Agency != "qingpu-amr" || c.Role != "reviewer" || c.TokenSHA256 != api.HashToken(m[1]) {
		t.Fatalf("credential %+v for token %s: %v", c, m[1], err)
	}
	if err := run(context.Background(), []string{"token", "new", "--agency", "x", "--role", "admin"}, &bytes.Buffer{}, &bytes.Buffer{}); exitCode(err) != 2 {
		t.Fatalf("unknown role: %v", err)
	}
}
