//go:build js && wasm

// Command wasm is the offline bundle verifier (tongban/gateway/bundle)
// compiled to WebAssembly for the console: the browser checks a bundle
// itself against the log key its user pinned, so the gateway serving the
// page cannot vouch for its own evidence. It registers one global
// function, tongbanVerify(bytes Uint8Array, key string[, sm2Key string]) ->
// JSON string of bundle.Report, or {"error": "..."} when the bytes are not
// a bundle. An sm2Key (gm profile) requires the checkpoint's SM2 line too;
// SM3 digests are checked whenever the ledger recorded them.
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
	if len(args) != 2 && len(args) != 3 {
		return errJSON("tongbanVerify(bytes, key[, sm2Key]) takes two or three arguments")
	}
	o := bundle.Options{Key: args[1].String()}
	if len(args) == 3 && args[2].Type() == js.TypeString {
		o.SM2Key = args[2].String()
	}
	b := make([]byte, args[0].Get("length").Int())
	js.CopyBytesToGo(b, args[0])
	rep := bundle.Verify(bytes.NewReader(b), int64(len(b)), o)
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
