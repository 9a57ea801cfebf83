//go:build js && wasm

// Command wasm is the offline bundle verifier (tongban/gateway/bundle)
// compiled to WebAssembly for the console: the browser checks a bundle
// itself against the log key its user pinned, so the gateway serving the
// page cannot vouch for its own evidence. It registers one global
// function, tongbanVerify(bytes Uint8Array, key string) -> JSON string of
// bundle.Report, or {"error": "..."} when the bytes are not a bundle.
package main

import (
	"bytes"
	"encoding/json"
	"syscall/js"

	"tongban/gateway/bundle"
)

func main() {
	js.Global().Set("tongbanVerify", js.FuncOf(verify))
	select {} // keep the exported function alive
}

func verify(_ js.Value, args []js.Value) any {
	if len(args) != 2 {
		return errJSON("tongbanVerify(bytes, key) takes two arguments")
	}
	b := make([]byte, args[0].Get("length").Int())
	js.CopyBytesToGo(b, args[0])
	rep := bundle.Verify(bytes.NewReader(b), int64(len(b)), bundle.Options{Key: args[1].String()})
	out, err := json.Marshal(rep)
	if err != nil {
		return errJSON(err.Error())
	}
	return string(out)
}

func errJSON(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}
