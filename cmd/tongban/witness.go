package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger/witness"
)

const witnessUsage = "usage: tongban witness serve --addr ADDR --data DIR --log VKEY... | tongban witness key --data DIR [--name NAME]"

// runWitness runs a C2SP tlog-witness for the logs named, or prints the
// witness's verifier key.
func runWitness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError(witnessUsage)
	}
	switch args[0] {
	case "serve":
		return runWitnessServe(ctx, args[1:], stdout, stderr)
	case "key":
		return runWitnessKey(args[1:], stdout)
	}
	return usageError("unknown witness command %q\n%s", args[0], witnessUsage)
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func runWitnessServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("witness serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:7380", "listen address")
	data := fs.String("data", "", "data directory: the witness key and what it cosigned (required)")
	name := fs.String("name", "", "name of the key created on first use (default: derived from the key)")
	logFormat := fs.String("log-format", "auto", "log format: json, text or auto (text on a terminal)")
	var logs listFlag
	fs.Var(&logs, "log", "a log's note verifier key, or a file holding it; its name is the log's origin (repeatable)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *data == "" || len(logs) == 0 {
		return usageError("usage: tongban witness serve --addr ADDR --data DIR --log VKEY...")
	}
	keys := make([]string, len(logs))
	for i, arg := range logs {
		if keys[i], err = logKey(arg); err != nil {
			return err
		}
	}
	log := newLogger(stderr, *logFormat)
	w, err := witness.Open(witness.Options{Dir: *data, Name: *name, Logs: keys, Logger: log})
	if err != nil {
		return err
	}
	defer w.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           w,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second, // bodies are at most 64 KiB
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("witness serving", "addr", ln.Addr().String(), "data", *data, "key", w.VerifierKey(), "logs", len(keys))
	fmt.Fprintf(stdout, "tongban witness: listening on http://%s; verifier key %s\n", ln.Addr(), w.VerifierKey())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	return nil
}

func runWitnessKey(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("witness key", flag.ContinueOnError)
	data := fs.String("data", "", "the witness's data directory (required)")
	name := fs.String("name", "", "name of the key if it is created now (default: derived from the key)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || *data == "" {
		return usageError("usage: tongban witness key --data DIR [--name NAME]")
	}
	s, err := witness.LoadOrCreateKey(*data, *name)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, s.Verifier().String())
	return nil
}

// logKey takes a log's note verifier key or a file holding one.
func logKey(arg string) (string, error) {
	if _, err := note.NewVerifier(arg); err == nil {
		return arg, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return "", usageError("--log %q is neither a note verifier key nor a readable file", arg)
	}
	key := strings.TrimSpace(string(b))
	if _, err := note.NewVerifier(key); err != nil {
		return "", fmt.Errorf("--log file %s: %w", arg, err)
	}
	return key, nil
}
