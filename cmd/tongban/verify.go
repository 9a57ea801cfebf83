package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"tongban/gateway/bundle"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it (obtained out of band)")
	var o verifyOpts
	fs.StringVar(&o.packet, "packet", "", "the packet the bundle must be of")
	fs.StringVar(&o.extract, "extract", "", "after an INTACT verdict, write the verified files into this new directory")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	notBefore := fs.String("not-before", "", "require the bundle to be complete as of this time or later (RFC 3339)")
	fs.Int64Var(&o.minSize, "min-size", 0, "require the checkpoint to cover at least this many ledger entries")
	sm2Arg := fs.String("sm2-key", "", "gm profile: the log's SM2 verifier key, or a file holding it; its signature is then required")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	const usage = "usage: tongban verify BUNDLE.zip --log-key KEY [--packet ID] [--extract DIR] [--not-before TIME] [--min-size N] [--sm2-key KEY] [--json]"
	if len(pos) != 1 || *keyArg == "" {
		return usageError(usage)
	}
	if *notBefore != "" {
		if o.notBefore, err = time.Parse(time.RFC3339, *notBefore); err != nil {
			return usageError("--not-before: %v\n%s", err, usage)
		}
	}
	vkey, err := loadVerifierKey(*keyArg)
	if err != nil {
		return err
	}
	if *sm2Arg != "" {
		if o.sm2Key, err = loadSM2VerifierKey(*sm2Arg); err != nil {
			return err
		}
	}
	return verifyBundle(pos[0], vkey, o, stdout)
}

// verifyOpts are verify's choices beyond the bundle and the key.
type verifyOpts struct {
	packet, extract string
	json            bool
	notBefore       time.Time
	minSize         int64
	sm2Key          string // gm profile: required SM2 verifier key
}

// loadVerifierKey takes a note verifier key or a file holding one.
func loadVerifierKey(arg string) (string, error) {
	if _, err := note.NewVerifier(arg); err == nil {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", usageError("--log-key %q is neither a verifier key nor a readable file: %v", arg, err)
	}
	key := strings.TrimSpace(string(b))
	if _, err := note.NewVerifier(key); err != nil {
		return "", usageError("--log-key file %s: %v", arg, err)
	}
	return key, nil
}

// verifyBundle checks a bundle file, prints one line per check, the
// summary and the verdict, and extracts it if asked and INTACT. Exit codes:
// 0 INTACT, 1 ALTERED or INCOMPLETE, 3 UNVERIFIABLE.
func verifyBundle(path, vkey string, o verifyOpts, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return usageError("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: %v", err)}
	}
	rep := bundle.Verify(f, st.Size(), bundle.Options{Key: vkey, Packet: o.packet, NotBefore: o.notBefore, MinSize: o.minSize, SM2Key: o.sm2Key})
	if rep.OK && o.extract != "" {
		if err := rep.Extract(f, o.extract); err != nil {
			return err
		}
	}
	if o.json {
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
		if s := rep.Summary; s != nil {
			fmt.Fprintf(stdout, "packet %s: item %s, from %s to %s, status %s\n", s.Packet, s.Item, s.Origin, s.Destination, s.Status)
			as := "COMPLETE AS OF"
			if !rep.OK {
				as = "claims to be complete as of"
			}
			fmt.Fprintf(stdout, "%s seq %d, %s (downloaded by %s); proven into %s at size %d, root %s\n",
				as, s.AsOfSeq, s.AsOf.UTC().Format(time.RFC3339), s.Downloader, rep.Checkpoint.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root)
			if s.Applicant != "" {
				fmt.Fprintf(stdout, "applicant: %s\n", s.Applicant)
			}
		}
	}
	if !rep.OK {
		bad := rep.Failures()
		var names []string
		for _, c := range bad {
			names = append(names, c.Target+": "+c.Detail)
		}
		if !o.json {
			fmt.Fprintf(stdout, "%s: %d check(s) failed; first: %s: %s\n", rep.Verdict, len(bad), bad[0].Target, bad[0].Detail)
		}
		code := 1
		if rep.Verdict == bundle.Unverifiable {
			code = 3
		}
		return exitError{code: code, msg: fmt.Sprintf("%s: bundle %s: %s", rep.Verdict, path, strings.Join(names, "; "))}
	}
	if !o.json {
		fmt.Fprintf(stdout, "INTACT: packet %s, proven into %s at size %d\n", rep.Packet, rep.Checkpoint.Origin, rep.Checkpoint.Size)
		if o.extract != "" {
			fmt.Fprintf(stdout, "extracted %d verified files into %s\n", len(rep.Files()), o.extract)
		}
	}
	return nil
}
