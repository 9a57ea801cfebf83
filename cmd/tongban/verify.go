package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"tongban/gateway/bundle"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it (GET /v1/ledger/key)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *keyArg == "" {
		return usageError("usage: tongban verify BUNDLE.zip --log-key KEY [--json]")
	}
	vkey, err := loadVerifierKey(*keyArg)
	if err != nil {
		return err
	}
	return verifyBundle(pos[0], vkey, *asJSON, stdout)
}

// loadVerifierKey takes a note verifier key or a file holding one.
func loadVerifierKey(arg string) (string, error) {
	if _, err := note.NewVerifier(arg); err == nil {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", fmt.Errorf("--log-key %q is neither a verifier key nor a readable file: %w", arg, err)
	}
	key := strings.TrimSpace(string(b))
	if _, err := note.NewVerifier(key); err != nil {
		return "", fmt.Errorf("--log-key file %s: %w", arg, err)
	}
	return key, nil
}

// verifyBundle checks a bundle file and prints one line per check and a
// verdict; it fails when anything does not hold.
func verifyBundle(path, vkey string, asJSON bool, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	rep, err := bundle.Verify(f, st.Size(), vkey)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, c := range rep.Checks {
			mark := "ok  "
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(stdout, "%s  %s: %s\n", mark, c.Target, c.Detail)
		}
	}
	if !rep.OK {
		bad := rep.Failures()
		if !asJSON {
			fmt.Fprintf(stdout, "ALTERED: %d check(s) failed; first: %s: %s\n", len(bad), bad[0].Target, bad[0].Detail)
		}
		return exitError{code: 1, msg: fmt.Sprintf("bundle %s failed verification: %s: %s", path, bad[0].Target, bad[0].Detail)}
	}
	if !asJSON {
		fmt.Fprintf(stdout, "INTACT: packet %s, proven into %s at size %d\n", rep.Packet, rep.Checkpoint.Origin, rep.Checkpoint.Size)
	}
	return nil
}
