// Command genwasm writes the console's verifier.wasm.gz and wasm_exec.js
// (run by go generate in api/console).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"tongban/api/console/internal/wasmbuild"
)

func main() {
	wasm, js, err := wasmbuild.Files(".")
	if err == nil {
		err = os.WriteFile(filepath.Join("static", "verifier.wasm.gz"), wasm, 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join("static", "wasm_exec.js"), js, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genwasm:", err)
		os.Exit(1)
	}
}
