package console

import (
	"bytes"
	"testing"

	"tongban/api/console/internal/wasmbuild"
)

// TestVerifierUpToDate rebuilds the in-browser verifier from the source
// and compares it with the embedded one: the browser must run the
// verifier this source describes. On failure: go generate ./api/console
func TestVerifierUpToDate(t *testing.T) {
	wasm, js, err := wasmbuild.Files(".")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"static/verifier.wasm.gz": wasm, "static/wasm_exec.js": js} {
		got, err := staticFS.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale (embedded %d bytes, built %d): run go generate ./api/console and commit", name, len(got), len(want))
		}
	}
}
