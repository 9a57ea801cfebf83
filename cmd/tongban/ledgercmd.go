package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tongban/ledger"
	"tongban/ledger/format"
	"tongban/ledger/witness"
)

// ledgerDir is where the gateway keeps its ledger inside --data.
func ledgerDir(data string) string { return filepath.Join(data, "ledger") }

func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: tongban ledger verify --data DIR [--log-key KEY] [--from FILE] [--witness VKEY]... [--quorum K]"
	if len(args) == 0 || args[0] != "verify" {
		return usageError(usage)
	}
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	data := fs.String("data", "data", "the gateway's data directory")
	keyArg := fs.String("log-key", "", "the log's verifier key, or a file holding it, obtained apart from DIR")
	from := fs.String("from", "", "a signed checkpoint FILE of this log, trusted: check the tree against it and only the entries after it")
	var pf policyFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ledger verify takes no arguments, got %q\n%s", pos, usage)
	}
	var trusted string
	if *keyArg != "" {
		if trusted, err = loadVerifierKey(*keyArg); err != nil {
			return usageError("%v", err)
		}
	}
	policy, err := pf.policy()
	if err != nil {
		return err
	}
	dir := ledgerDir(*data)
	l, err := ledger.Open(ledger.Options{Dir: dir, ReadOnly: true})
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: stop the gateway first, or ask it with POST /v1/ledger/verify", err)
	}
	if err != nil {
		return err
	}
	defer l.Close()

	var fromCP *ledger.Checkpoint
	if *from != "" {
		if fromCP, err = readTrusted(*from, l); err != nil {
			return err
		}
	}

	fmt.Fprintf(stdout, "ledger   %s\norigin   %s\n", dir, l.Origin())
	// Verify checks every stored checkpoint with the key in the directory;
	// trust comes from outside only if that key is the one given.
	if trusted == "" {
		fmt.Fprintf(stdout, "key      %s\n         trusted because it is the key in %s (no --log-key given):\n"+
			"         whoever can write that directory could have replaced it; pass --log-key KEY obtained apart from it\n",
			l.VerifierKey(), dir)
	} else if trusted != l.VerifierKey() {
		fmt.Fprintf(stdout, "key      %s (given)\n         the ledger is signed with %s\nresult   UNVERIFIABLE\n", trusted, l.VerifierKey())
		return exitError{code: 3, msg: "ledger verification: the ledger is not signed with the key given (--log-key)"}
	} else {
		fmt.Fprintf(stdout, "key      %s (given with --log-key; the directory's key matches)\n", trusted)
	}
	bar := newProgress(stderr, "verifying", "entries", l.Size())
	report := func(done, total int64) { bar.Set(done) }
	if bar == nil {
		report = progressLines(stderr, verifyProgressEvery)
	}
	var rep ledger.Report
	if fromCP != nil {
		fmt.Fprintf(stdout, "from     %d (trusted checkpoint %s)\n", fromCP.Size, *from)
		rep, err = l.VerifyFrom(ctx, *fromCP, report)
	} else {
		rep, err = l.Verify(ctx, report)
	}
	bar.Finish()
	var ve *ledger.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(stdout, "result   FAILED at seq %d: %s\n", ve.Seq, ve.Reason)
		return exitError{code: 1, msg: fmt.Sprintf("ledger verification failed: first bad seq %d", ve.Seq)}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "size     %d\nroot     %s\nsigned   %d checkpoints checked\n", rep.Size, rep.Root, rep.Checkpoints)

	bad, first, err := checkCanonical(ctx, l)
	if err != nil {
		return err
	}
	if bad > 0 {
		fmt.Fprintf(stdout, "result   FAILED: %d entries not in canonical form; first: seq %d: %v\n", bad, first.seq, first.err)
		return exitError{code: 1, msg: fmt.Sprintf("ledger verification failed: seq %d is not canonical: %v", first.seq, first.err)}
	}
	fmt.Fprintf(stdout, "canonical every entry and payload\n")
	if policy == nil {
		fmt.Fprintf(stdout, "trust    NOT checked against witnesses (give --witness)\nresult   OK\n")
		return nil
	}
	if err := checkWitnessed(*data, l.VerifierKey(), policy, l, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "result   OK\n")
	return nil
}

// checkWitnessed holds the ledger to the newest checkpoint in the data
// directory's cosign.json that the trusted witnesses cosigned: the trust
// comes from outside the directory (the log key and the witnesses' keys),
// so a rewritten ledger with a re-signed tree does not pass.
func checkWitnessed(data, vkey string, policy *witness.Policy, l *ledger.Ledger, stdout io.Writer) error {
	b, err := os.ReadFile(filepath.Join(data, "cosign.json"))
	if err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: no cosigned checkpoint to check against: %v", err)}
	}
	var st struct {
		Quorum string `json:"quorum_checkpoint"`
		Latest string `json:"latest_checkpoint"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: cosign.json: %v", err)}
	}
	var best format.Checkpoint
	var res witness.Result
	var why []string
	for _, s := range []string{st.Quorum, st.Latest} {
		if s == "" {
			continue
		}
		cp, err := format.OpenCheckpoint([]byte(s), vkey)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		r, err := policy.Check([]byte(s))
		if err != nil {
			why = append(why, fmt.Sprintf("size %d: %v", cp.Size, err))
			continue
		}
		if cp.Size >= best.Size {
			best, res = cp, r
		}
	}
	if best.Origin == "" {
		return exitError{code: 3, msg: fmt.Sprintf("UNVERIFIABLE: cosign.json holds no checkpoint signed by the log key and cosigned by a quorum of the witnesses given (%s)", strings.Join(why, "; "))}
	}
	if best.Size > l.Size() {
		return exitError{code: 1, msg: fmt.Sprintf("ALTERED: the witnesses cosigned tree size %d (root %s), the ledger holds only %d entries", best.Size, best.Root, l.Size())}
	}
	root, err := l.TreeHash(best.Size)
	if err != nil {
		return err
	}
	if root != best.Root {
		return exitError{code: 1, msg: fmt.Sprintf("ALTERED: the witnesses cosigned tree size %d with root %s, the ledger's tree of that size has root %s: its history was rewritten", best.Size, best.Root, root)}
	}
	fmt.Fprintf(stdout, "witnessed %d of the trusted witnesses cosigned size %d (quorum %d), no later than %s; the ledger extends it\n",
		len(res.Valid), best.Size, policy.Quorum(), res.NoLaterThan.Format(time.RFC3339))
	return nil
}

type seqErr struct {
	seq int64
	err error
}

// checkCanonical reads every entry and checks its canonical form: the
// envelope (fixed field order, one encoding) and the payload (canonical
// JSON). It counts the entries that fail and returns the first. Entries
// written before payloads were canonical fail here by design.
func checkCanonical(ctx context.Context, l *ledger.Ledger) (int64, *seqErr, error) {
	var bad int64
	var first *seqErr
	note := func(seq int64, err error) {
		bad++
		if first == nil {
			first = &seqErr{seq, err}
		}
	}
	for from := int64(0); from < l.Size(); {
		next := from
		err := l.Scan(ctx, from, func(r *ledger.Record) error {
			if err := format.CheckPayload(r.Payload); err != nil {
				note(r.Seq, fmt.Errorf("payload: %w", err))
			}
			next = r.Seq + 1
			return nil
		})
		if err == nil || ctx.Err() != nil {
			return bad, first, ctx.Err()
		}
		// Scan stops at an entry whose envelope does not parse: it is the
		// one after the last it handed over (Verify found no gap).
		note(next, fmt.Errorf("entry: %w", err))
		from = next + 1
	}
	return bad, first, nil
}

// verifyProgressEvery is how many entries pass between two progress lines
// when stderr is not a terminal (a log, a pipe).
const verifyProgressEvery = 1_000_000

// progressLines returns a progress func that writes a line to w each time
// another every entries are done.
func progressLines(w io.Writer, every int64) func(done, total int64) {
	next := every
	return func(done, total int64) {
		if done >= next {
			fmt.Fprintf(w, "verified %d of %d entries\n", done, total)
			next = (done/every + 1) * every
		}
	}
}

// readTrusted reads and checks a signed checkpoint of l from file.
func readTrusted(file string, l *ledger.Ledger) (*ledger.Checkpoint, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageError("--from: %v", err)
	}
	cp, err := ledger.OpenCheckpoint(b, l.VerifierKey())
	if err != nil {
		return nil, usageError("--from %s: not a checkpoint signed by this log: %v", file, err)
	}
	if cp.Origin != l.Origin() {
		return nil, usageError("--from %s: checkpoint of log %q, not %q", file, cp.Origin, l.Origin())
	}
	return &cp, nil
}
