package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

	fmt.Fprintf(stdout, "ledger   %s\norigin   %s\nkey      %s\n", dir, l.Origin(), l.VerifierKey())
	bar := newProgress(stderr, "verifying", "entries", l.Size())
	rep, err := l.Verify(ctx, func(done, _ int64) { bar.Set(done) })
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
