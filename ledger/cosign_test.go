package ledger

import (
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/gmnote"
)

// TestCoSigners: under the gm profile every checkpoint, the latest and
// one for a past size, carries an SM2 line after the Ed25519 line; each
// key verifies it alone, and the Ed25519-only check is unchanged.
func TestCoSigners(t *testing.T) {
	priv, _, err := gmnote.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sm2, err := gmnote.NewSigner(DefaultOrigin, priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, CoSigners: []note.Signer{sm2}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 5 {
		mustAppend(t, l, testEntry(i))
	}
	latest, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	past, err := l.CheckpointAt(3)
	if err != nil {
		t.Fatal(err)
	}
	gv, err := gmnote.NewVerifier(sm2.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := note.NewVerifier(l.VerifierKey())
	for _, cp := range [][]byte{latest, past} {
		if strings.Count(string(cp), "\n— "+DefaultOrigin+" ") != 2 {
			t.Fatalf("want an Ed25519 and an SM2 line:\n%s", cp)
		}
		if _, err := OpenCheckpoint(cp, l.VerifierKey()); err != nil {
			t.Fatalf("Ed25519 alone: %v", err)
		}
		n, err := note.Open(cp, note.VerifierList(gv))
		if err != nil || !gmnote.Signed(n, gv) {
			t.Fatalf("SM2 alone: %v", err)
		}
		if n, err := note.Open(cp, note.VerifierList(ev, gv)); err != nil || len(n.Sigs) != 2 {
			t.Fatalf("both: %v", err)
		}
	}

	other, _ := gmnote.NewSigner("another.example/log", priv)
	l.Close()
	if _, err := Open(Options{Dir: dir, CoSigners: []note.Signer{other}}); err == nil || !strings.Contains(err.Error(), "co-signer") {
		t.Fatalf("a co-signer of another name: %v", err)
	}
}
