package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// command is one subcommand: its usage line and what it does.
type command struct {
	usage string
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"ledger": {"ledger verify --data DIR    check a stopped gateway's ledger offline", runLedger},
		"serve":  {"serve [--addr A] [--data DIR] [--config FILE]    run the gateway", runServe},
		"verify": {"verify BUNDLE.zip --log-key KEY [--sm2-key KEY] [--json]    check a downloaded bundle offline", runVerify},
		"submit": {"submit --server URL [--manifest FILE | --item ...] KIND=FILE...    upload a packet", runSubmit},
		"fetch":  {"fetch ID -o FILE [--material KIND] [--verify --log-key KEY]    download a bundle or a material", runFetch},
		"keygen": {"keygen [--sm2] [--origin O] [--out FILE]    make a checkpoint signing key (--sm2: the gm profile's SM2 key)", runKeygen},
		"gc":     {"gc --data DIR [--grace 24h] [--dry-run]    delete stored objects no ledger entry names", runGC},
		"health": {"health [--server URL]    exit 0 when the gateway is ready (for container health checks)", runHealth},
		"token":  {"token new --agency ID --role ROLE    mint a bearer token and its credential line", runToken},

		"witness": {"witness serve --addr A --data DIR --log VKEY... | witness key --data DIR    cosign a log's checkpoints (C2SP tlog-witness)", runWitness},
	}
}

// run dispatches args[0] to its subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return exitError{code: 2}
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return usageError("unknown command %q", args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: tongban COMMAND [flags] [args]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintln(w, "  tongban "+cmds[n].usage)
	}
}

// exitError carries a process exit code; msg is printed unless empty.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func usageError(format string, a ...any) error {
	return exitError{code: 2, msg: fmt.Sprintf(format, a...)}
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// parseArgs parses flags that may come before or after positional
// arguments ("verify b.zip --log-key K" and "verify --log-key K b.zip").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitError{code: 0, msg: flagUsage(fs)}
			}
			return nil, usageError("%v\n%s", err, flagUsage(fs))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func flagUsage(fs *flag.FlagSet) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage of %s:\n", fs.Name())
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return strings.TrimRight(b.String(), "\n")
}
