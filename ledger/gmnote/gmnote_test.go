package gmnote

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/mod/sumdb/note"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// GB/T 32905-2016 Annex A: examples 1 and 2.
func TestSM3KnownAnswers(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"abc", "66c7f0f4 62eeedd9 d1f2d46b dc10e4e2 4167c487 5cf2f7a2 297da02b 8f4ba8e0"},
		{strings.Repeat("abcd", 16), "debe9ff9 2275b8a1 38604889 c18e5a4d 6fdb70e5 387e5765 293dcba3 9c0c5732"},
	} {
		got := sm3.Sum([]byte(c.in))
		if want := unhex(t, c.want); string(got[:]) != string(want) {
			t.Errorf("SM3(%q) = %x, want %x", c.in, got, want)
		}
		h := sm3.New() // streamed in odd pieces, as storage hashes
		for i := 0; i < len(c.in); i += 7 {
			h.Write([]byte(c.in[i:min(i+7, len(c.in))]))
		}
		if got := h.Sum(nil); hex.EncodeToString(got) != strings.ReplaceAll(c.want, " ", "") {
			t.Errorf("streamed SM3(%q) = %x", c.in, got)
		}
	}
}

// The signature example on the recommended curve of GM/T 0003.5-2012
// (GB/T 32918.5-2017) Annex A: ID 1234567812345678, message "message digest".
var annex = struct{ d, x, y, za, e, r, s, msg string }{
	d:   "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8",
	x:   "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020",
	y:   "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13",
	za:  "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3",
	e:   "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640",
	r:   "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3",
	s:   "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA",
	msg: "message digest",
}

func annexKey(t *testing.T) (*sm2.PrivateKey, *ecdsa.PublicKey) {
	priv, err := sm2.NewPrivateKey(unhex(t, annex.d))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sm2.NewPublicKey(append([]byte{4}, unhex(t, annex.x+annex.y)...))
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(&priv.PublicKey) {
		t.Fatal("the annex's public key is not d·G")
	}
	return priv, pub
}

func TestSM2AnnexSignature(t *testing.T) {
	_, pub := annexKey(t)
	za, err := sm2.CalculateZA(pub, []byte(UID))
	if err != nil || hex.EncodeToString(za) != strings.ToLower(annex.za) {
		t.Fatalf("Z_A = %x, %v; want %s", za, err, annex.za)
	}
	e, err := sm2.CalculateSM2Hash(pub, []byte(annex.msg), []byte(UID))
	if err != nil || hex.EncodeToString(e) != strings.ToLower(annex.e) {
		t.Fatalf("e = %x, %v; want %s", e, err, annex.e)
	}
	vk, err := VerifierKey("annex.example", pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vk)
	if err != nil {
		t.Fatal(err)
	}
	sig := unhex(t, annex.r+annex.s)
	if !v.Verify([]byte(annex.msg), sig) {
		t.Fatal("the standard's signature does not verify")
	}
	for name, bad := range map[string][]byte{
		"other message": []byte("message digesT"),
	} {
		if v.Verify(bad, sig) {
			t.Errorf("%s verifies", name)
		}
	}
	flipped := append([]byte(nil), sig...)
	flipped[63] ^= 1
	for name, s := range map[string][]byte{
		"flipped s": flipped, "short": sig[:63], "long": append(append([]byte(nil), sig...), 0),
		"zero": make([]byte, SigSize),
	} {
		if v.Verify([]byte(annex.msg), s) {
			t.Errorf("%s signature verifies", name)
		}
	}
}

func newSigner(t *testing.T, name string) *Signer {
	t.Helper()
	priv, pemKey, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivateKey(pemKey)
	if err != nil || !back.Equal(priv) {
		t.Fatalf("PEM round trip: %v", err)
	}
	s, err := NewSigner(name, back)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// An SM2 line sits beside an Ed25519 line in one note; each verifier
// accepts the note on its own key, and requiring a key is Signed's job.
func TestNoteWithBothFamilies(t *testing.T) {
	const origin = "tongban.yrd/ledger"
	skey, vkey, err := note.GenerateKey(nil, origin)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	edv, _ := note.NewVerifier(vkey)
	gm := newSigner(t, origin)
	gmv, err := NewVerifier(gm.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if gmv.KeyHash() == edv.KeyHash() {
		t.Fatal("key IDs collide")
	}
	text := origin + "\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	signed, err := note.Sign(&note.Note{Text: text}, ed, gm)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(signed), "\n— "+origin+" ") != 2 {
		t.Fatalf("want two signature lines:\n%s", signed)
	}
	// An Ed25519-only verifier (every existing tool) still accepts it.
	n, err := note.Open(signed, note.VerifierList(edv))
	if err != nil || n.Text != text || Signed(n, gmv) {
		t.Fatalf("Ed25519 only: %v", err)
	}
	n, err = note.Open(signed, note.VerifierList(edv, gmv))
	if err != nil || !Signed(n, gmv) || !Signed(n, edv) {
		t.Fatalf("both: %v, sigs %v", err, n)
	}
	// Another SM2 key of the same name: its line is unknown, not verified.
	other := newSigner(t, origin)
	otherv, _ := NewVerifier(other.VerifierKey())
	n, err = note.Open(signed, note.VerifierList(edv, otherv))
	if err != nil || Signed(n, otherv) {
		t.Fatalf("another SM2 key counts as signed: %v", err)
	}
	var unknown *note.UnverifiedNoteError
	if _, err := note.Open(signed, note.VerifierList(otherv)); !errors.As(err, &unknown) {
		t.Fatalf("only another SM2 key: %v", err)
	}
	// A changed text fails under the SM2 key, even alone.
	forged := strings.Replace(string(signed), "\n5\n", "\n6\n", 1)
	if _, err := note.Open([]byte(forged), note.VerifierList(gmv)); err == nil {
		t.Fatal("altered text verifies under SM2")
	}
}

func TestVerifierKeyParsing(t *testing.T) {
	s := newSigner(t, "tongban.yrd/ledger")
	vk := s.VerifierKey()
	if !IsVerifierKey(vk) {
		t.Fatal("IsVerifierKey false for an SM2 key")
	}
	_, edv, _ := note.GenerateKey(nil, "tongban.yrd/ledger")
	if IsVerifierKey(edv) {
		t.Fatal("IsVerifierKey true for an Ed25519 key")
	}
	f := strings.SplitN(vk, "+", 3)
	for name, k := range map[string]string{
		"ed25519":    edv,
		"wrong id":   f[0] + "+00000000+" + f[2],
		"other name": "other.example+" + f[1] + "+" + f[2],
		"no key":     f[0] + "+" + f[1],
		"bad base64": f[0] + "+" + f[1] + "+!!",
		"space name": "a b+" + f[1] + "+" + f[2],
	} {
		if _, err := NewVerifier(k); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewSigner("a+b", s.priv); err == nil {
		t.Error("a name with + accepted")
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")); err == nil {
		t.Error("garbage PKCS#8 accepted")
	}
}
