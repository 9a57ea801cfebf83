package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/dgraph-io/badger/v4"

	"tongban/gateway"
	"tongban/ledger"
)

// runRebuild drops a stopped gateway's packet views and rebuilds them from
// the whole ledger. The gateway does this by itself for the entries it had
// not applied; this is for views that are suspect or of an old layout.
func runRebuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("rebuild", flag.ContinueOnError)
	data := fset.String("data", "data", "the gateway's data directory")
	config := fset.String("config", "", "the gateway's config file, for its storage settings")
	check := fset.Bool("check", false, "first bring the views up to the ledger, then compare them with the rebuilt ones, key by key")
	if pos, err := parseArgs(fset, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("rebuild takes no arguments")
	}
	log := newLogger(stderr, "auto")
	cfg, err := stoppedConfig(*data, *config)
	if err != nil {
		return err
	}
	// The ledger's lock says whether the gateway is stopped; only then
	// may its views go.
	l, err := ledger.Open(ledger.Options{Dir: ledgerDir(*data), Origin: cfg.Origin, Logger: log})
	if errors.Is(err, ledger.ErrLocked) {
		return fmt.Errorf("%w: stop the gateway first", err)
	}
	if err != nil {
		return err
	}
	size := l.Size()
	if err := l.Close(); err != nil {
		return err
	}
	state := filepath.Join(*data, "state")
	old := state + ".before-rebuild"
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if *check {
		// The views as a restart leaves them, kept aside to compare.
		_, _, closeAll, err := openGateway(ctx, *data, cfg, log, openOptions{})
		if err != nil {
			return err
		}
		closeAll()
		if err := os.Rename(state, old); err != nil {
			return err
		}
		defer os.RemoveAll(old)
	}
	if err := os.RemoveAll(state); err != nil {
		return err
	}
	start := time.Now()
	if err := rebuildViews(ctx, *data, cfg, log); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rebuilt the packet views from %d ledger entries in %s\n", size, time.Since(start).Round(time.Millisecond))
	if *check {
		if err := gateway.CompareViews(old, state); err != nil {
			return fmt.Errorf("the views before the rebuild were wrong (now rebuilt): %w", err)
		}
		fmt.Fprintln(stdout, "the views before the rebuild matched the rebuilt ones")
	}
	return nil
}

// rebuildMemory is the Go heap limit of a rebuild (Badger's mapped files
// come on top).
const rebuildMemory = 192 << 20

// rebuildViews opens the gateway on a data directory without views, which
// makes New replay the whole ledger into new ones. The ledger is opened
// with a small block cache: the replay reads each entry once, so Badger's
// default cache (256 MiB) would only fill with blocks never read again.
//
// The replay makes garbage much faster than it keeps data: without a
// limit the Go heap grows to several times what is live (600 MiB at 100k
// packets), so the process asks the collector to stay under rebuildMemory
// unless GOMEMLIMIT says otherwise.
func rebuildViews(ctx context.Context, data string, cfg fileConfig, log *slog.Logger) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(rebuildMemory))
	}
	_, _, closeAll, err := openGateway(ctx, data, cfg, log, openOptions{badger: func(o badger.Options) badger.Options {
		return o.WithBlockCacheSize(8 << 20).WithNumMemtables(1)
	}})
	if err != nil {
		return err
	}
	closeAll()
	return nil
}
