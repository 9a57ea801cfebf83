package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"tongban/gateway/bundle"
	"tongban/ledger/witness"
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
	var pf policyFlags
	pf.register(fs)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	const usage = "usage: tongban verify BUNDLE.zip --log-key KEY [--packet ID] [--witness VKEY]... [--quorum K] [--state FILE] [--server URL] [--extract DIR] [--not-before TIME] [--min-size N] [--sm2-key KEY] [--json]"
	if len(pos) != 1 || *keyArg == "" {
		return usageError(usage)
	}
	if o.witnesses, err = pf.policy(); err != nil {
		return err
	}
	o.state = pf.state
	if serverGiven(fs) {
		// Online: the server proves consistency with the remembered checkpoint.
		if err := cf.check(); err != nil {
			return err
		}
		o.prove = serverProver(&cf)
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
	return verifyBundle(ctx, pos[0], vkey, o, stdout)
}

// verifyOpts are verify's choices beyond the bundle and the key.
type verifyOpts struct {
	packet, extract string
	json            bool
	notBefore       time.Time
	minSize         int64
	sm2Key          string // gm profile: required SM2 verifier key
	witnesses       *witness.Policy
	state           string // the file remembering checkpoints ("" for the default)
	prove           prover // asks a server for consistency proofs (nil offline)
}

// policyFlags are the witness policy and checkpoint memory flags of the
// commands that check evidence.
type policyFlags struct {
	witnesses listFlag
	quorum    int
	state     string
}

func (p *policyFlags) register(fs *flag.FlagSet) {
	fs.Var(&p.witnesses, "witness", "a trusted witness's verifier key, or a file holding it (repeatable)")
	fs.IntVar(&p.quorum, "quorum", -1, "how many of the --witness keys must have cosigned (default: all of them)")
	fs.StringVar(&p.state, "state", "", "the file remembering this log's newest verified checkpoint (default: one per log in the user's config directory)")
}

// policy returns the witness policy asked for, nil for none.
func (p *policyFlags) policy() (*witness.Policy, error) {
	if len(p.witnesses) == 0 {
		if p.quorum > 0 {
			return nil, usageError("--quorum %d needs the witnesses' keys (--witness VKEY)", p.quorum)
		}
		return nil, nil
	}
	var keys []string
	for _, w := range p.witnesses {
		k, err := loadWitnessKey(w)
		if err != nil {
			return nil, usageError("%v", err)
		}
		keys = append(keys, k)
	}
	q := p.quorum
	if q < 0 {
		q = len(keys)
	}
	pol, err := witness.NewPolicy(keys, q)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return pol, nil
}

// serverGiven says whether --server was set on the command line.
func serverGiven(fs *flag.FlagSet) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "server" })
	return given
}

// loadVerifierKey takes a note verifier key or a file holding one.
func loadVerifierKey(arg string) (string, error) {
	key, err := keyOrFile("--log-key", "a verifier key", arg, func(k string) error {
		_, err := note.NewVerifier(k)
		return err
	})
	if err != nil {
		return "", usageError("%v", err)
	}
	return key, nil
}

// keyOrFile takes a key given on the command line, or the name of a file
// holding one; check says whether a string is such a key. flag and what
// name it in errors.
func keyOrFile(flag, what, arg string, check func(string) error) (string, error) {
	if check(arg) == nil {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", fmt.Errorf("%s %q is neither %s nor a readable file: %w", flag, arg, what, err)
	}
	key := strings.TrimSpace(string(b))
	if err := check(key); err != nil {
		return "", fmt.Errorf("%s file %s: %w", flag, arg, err)
	}
	return key, nil
}

// verifyBundle checks a bundle file, prints one line per check, the
// summary and the verdict, and extracts it if asked and INTACT. Exit codes:
// 0 INTACT, 1 ALTERED or INCOMPLETE, 3 UNVERIFIABLE.
func verifyBundle(ctx context.Context, path, vkey string, o verifyOpts, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return usageError("%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: %v", err)}
	}
	rep := bundle.Verify(f, st.Size(), bundle.Options{Key: vkey, Packet: o.packet, NotBefore: o.notBefore, MinSize: o.minSize, SM2Key: o.sm2Key, Witnesses: o.witnesses})
	memo, fork := remember(ctx, rep, vkey, o)
	if fork != nil {
		rep.OK, rep.Verdict = false, bundle.Altered
		rep.Checks = append(rep.Checks, bundle.Check{Target: "remembered checkpoint", Detail: fork.Error(), Fault: "altered"})
	} else if memo != "" {
		rep.Checks = append(rep.Checks, bundle.Check{OK: true, Target: "remembered checkpoint", Detail: memo})
	}
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
		if w := rep.Witnessed; w != nil {
			switch {
			case !w.Checked:
				fmt.Fprintf(stdout, "witnesses: NOT checked (no --witness given); the checkpoint is trusted on the log key alone\n")
			case w.NoLaterThan != nil:
				fmt.Fprintf(stdout, "witnessed by %d of the trusted witnesses (quorum %d): the tree was public NO LATER THAN %s\n", len(w.Valid), w.Quorum, w.NoLaterThan.UTC().Format(time.RFC3339))
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

// remember holds the bundle's newest checkpoint to the one this client
// remembers for the log (see memory). It returns a note, or the fork.
// Trouble with the memory itself is a note, not a verdict.
func remember(ctx context.Context, rep *bundle.Report, vkey string, o verifyOpts) (string, *forkError) {
	exact, cosigned, proof := rep.Signed()
	if exact == nil || rep.Verdict == bundle.Unverifiable {
		return "", nil
	}
	m, err := openMemory(vkey, o.state)
	if err != nil {
		return "not remembered: " + err.Error(), nil
	}
	presented := exact
	var known []bundle.ConsistencyProof
	if cosigned != nil {
		presented = cosigned
		known = append(known, *proof)
	}
	note, err := m.check(ctx, presented, known, o.prove)
	var fe *forkError
	if errors.As(err, &fe) {
		return "", fe
	}
	if err != nil {
		return "not remembered: " + err.Error(), nil
	}
	return note, nil
}
