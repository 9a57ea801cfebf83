package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/gmnote"
)

// TestKeygenSM2: keygen --sm2 writes a PKCS#8 PEM key with mode 0600,
// prints its verifier key, and never overwrites; serve's loader reads the
// same file and signs lines that key verifies.
func TestKeygenSM2(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sm2.key")
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"keygen", "--sm2", "--origin", "qingpu.example/log", "--out", out}, &stdout, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	b, _ := os.ReadFile(out)
	if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Fatalf("not a PKCS#8 PEM:\n%s", b)
	}
	m := regexp.MustCompile(`SM2 verifier key: (\S+)`).FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("output %q", stdout.String())
	}
	v, err := gmnote.NewVerifier(m[1])
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadSM2Signer(out, "qingpu.example/log")
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := note.Sign(&note.Note{Text: "qingpu.example/log\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"}, s)
	if _, err := note.Open(msg, note.VerifierList(v)); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"keygen", "--sm2", "--out", out}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("keygen --sm2 overwrote an existing key")
	}
	// serve's loader creates a missing key the same way.
	created := filepath.Join(dir, "ledger", "sm2.key")
	s1, err := loadSM2Signer(created, "")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := loadSM2Signer(created, "")
	if err != nil || s1.VerifierKey() != s2.VerifierKey() {
		t.Fatalf("the created key did not persist: %v", err)
	}
	if st, err := os.Stat(created); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("created key file: %v %v", st, err)
	}
	if _, err := checkProfile("sm"); exitCode(err) != 2 {
		t.Fatalf("unknown profile: %v", err)
	}
}
