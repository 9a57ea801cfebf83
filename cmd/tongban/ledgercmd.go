package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"tongban/ledger"
)

// ledgerDir is where the gateway keeps its ledger inside --data.
func ledgerDir(data string) string { return filepath.Join(data, "ledger") }

func runLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError("usage: tongban ledger verify --data DIR")
	}
	fs := flag.NewFlagSet("ledger verify", flag.ContinueOnError)
	data := fs.String("data", "data", "the gateway's data directory")
	from := fs.String("from", "", "a signed checkpoint FILE of this log, trusted: check the tree against it and only the entries after it")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ledger verify takes no arguments, got %q", pos)
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

	var trusted *ledger.Checkpoint
	if *from != "" {
		if trusted, err = readTrusted(*from, l); err != nil {
			return err
		}
	}

	fmt.Fprintf(stdout, "ledger   %s\norigin   %s\nkey      %s\n", dir, l.Origin(), l.VerifierKey())
	bar := newProgress(stderr, "verifying", "entries", l.Size())
	report := func(done, total int64) { bar.Set(done) }
	if bar == nil {
		report = progressLines(stderr, verifyProgressEvery)
	}
	var rep ledger.Report
	if trusted != nil {
		fmt.Fprintf(stdout, "from     %d (trusted checkpoint %s)\n", trusted.Size, *from)
		rep, err = l.VerifyFrom(ctx, *trusted, report)
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
	fmt.Fprintf(stdout, "size     %d\nroot     %s\nsigned   %d checkpoints checked\nresult   OK\n", rep.Size, rep.Root, rep.Checkpoints)
	return nil
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
