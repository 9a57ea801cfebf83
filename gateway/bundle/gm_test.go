package bundle

import (
	"encoding/hex"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"
)

// TestVerifySM3: where the ledger recorded an SM3 digest (gm profile) the
// verifier checks it on its own, not only through SHA-256: a file whose
// SHA-256 matches and whose SM3 does not is ALTERED. (The console's
// in-browser verifier is this package compiled to WebAssembly.)
func TestVerifySM3(t *testing.T) {
	sum := func(b []byte) string { s := sm3.Sum(b); return hex.EncodeToString(s[:]) }
	licence := []byte("%PDF-1.7\n% housing-fund certificate\n%%EOF\n") // buildBundle's
	withSM3 := func(d string) func(typ, payload string) string {
		return func(typ, payload string) string {
			if typ != "license.issued" {
				return payload
			}
			return strings.Replace(payload, `"kind":"license",`, `"kind":"license","sm3":"`+d+`",`, 1)
		}
	}
	name := License + "certificate.pdf"
	detail := func(rep *Report) string {
		for _, c := range rep.Checks {
			if c.Target == name {
				return c.Detail
			}
		}
		return ""
	}

	h := buildBundle(t, withSM3(sum(licence)))
	rep, _ := verifyBytes(zipFiles(t, h.files), h.vkey)
	if !rep.OK || !strings.Contains(detail(rep), "sha256 "+hexSum(licence)+" and sm3 "+sum(licence)+" match the ledger") {
		t.Fatalf("SM3 recorded and right: %s, %q, %+v", rep.Verdict, detail(rep), rep.Failures())
	}

	// The SHA-256 the ledger recorded still matches; the SM3 does not.
	other := sum([]byte("another file"))
	h = buildBundle(t, withSM3(other))
	rep, _ = verifyBytes(zipFiles(t, h.files), h.vkey)
	if rep.OK || rep.Verdict != Altered || !strings.Contains(detail(rep), "has been altered: sm3 "+sum(licence)+", the ledger recorded "+other) {
		t.Fatalf("SM3 recorded and wrong: %s, %q", rep.Verdict, detail(rep))
	}

	// A changed byte: both digests name it.
	h = buildBundle(t, withSM3(sum(licence)))
	forged := []byte("%PDF-1.7\n% housing-fund certificatE\n%%EOF\n")
	rep, _ = verifyBytes(zipFiles(t, replaced(h.files, name, forged)), h.vkey)
	if rep.Verdict != Altered || !strings.Contains(detail(rep), "caught by both digests: sha256 "+hexSum(forged)) ||
		!strings.Contains(detail(rep), "sm3 "+sum(forged)+", the ledger recorded "+sum(licence)) {
		t.Fatalf("a changed byte: %s, %q", rep.Verdict, detail(rep))
	}
}
