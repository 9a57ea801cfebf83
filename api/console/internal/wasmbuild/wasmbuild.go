// Package wasmbuild builds the console's in-browser verifier: the offline
// bundle verifier compiled to WebAssembly, gzipped, and the Go runtime's
// wasm_exec.js that loads it. go generate writes both into the console's
// static files; a test rebuilds them and fails if the committed ones are
// stale, so the verifier a browser runs is the one in the source.
package wasmbuild

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Files returns the gzipped verifier.wasm and wasm_exec.js, built from the
// module that holds dir (api/console).
func Files(dir string) (wasmGz, execJS []byte, err error) {
	tmp, err := os.MkdirTemp("", "tongban-wasm-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "verifier.wasm")
	// -trimpath and no VCS stamp: the same source gives the same bytes.
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, "./wasm")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("building the wasm verifier: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // no name, no time: deterministic
	zw.Write(wasm)
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("go env GOROOT: %v", err)
	}
	execJS, err = os.ReadFile(filepath.Join(strings.TrimSpace(string(root)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), execJS, nil
}
