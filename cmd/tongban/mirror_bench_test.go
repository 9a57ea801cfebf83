//go:build unix

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/ledger"
)

// BenchmarkMirror mirrors a 100,000-entry log from a real gateway's tiles
// API into a new directory, then checks the copy offline, beside the
// ledger's own Verify of the same log in the same run (the baseline).
func BenchmarkMirror(b *testing.B) {
	const n = 100_000
	env := apitest.New(b, apitest.Options{})
	l := env.Ledger
	var left atomic.Int64
	left.Store(n)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; left.Add(-1) >= 0; i += 64 {
				_, err := l.Append(context.Background(), ledger.Entry{
					Type: "packet.submitted", Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
					Packet:  fmt.Sprintf("pkt-%d", i%7),
					Payload: json.RawMessage(fmt.Sprintf(`{"item":"ENT-SETUP","n":%d,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`, i)),
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if l.Size() != n {
		b.Fatalf("ledger size %d", l.Size())
	}
	vkey := l.VerifierKey()
	// The machine is shared and loaded: besides wall-clock entries/s,
	// report entries per CPU second of this process (client and server).
	var cpu0 time.Duration
	rate := func(b *testing.B, start time.Time) {
		b.ReportMetric(float64(int64(b.N)*n)/time.Since(start).Seconds(), "entries/s")
		b.ReportMetric(float64(int64(b.N)*n)/(cpuTime()-cpu0).Seconds(), "entries/cpu-s")
	}
	b.Run("ledger-verify", func(b *testing.B) {
		start := time.Now()
		cpu0 = cpuTime()
		for b.Loop() {
			if rep, err := l.Verify(context.Background(), nil); err != nil || rep.Size != n {
				b.Fatal(rep, err)
			}
		}
		rate(b, start)
	})
	var dir string
	base := b.TempDir()
	if d := os.Getenv("TONGBAN_BENCH_MIRROR_DIR"); d != "" {
		base = d
	}
	b.Run("mirror", func(b *testing.B) {
		start := time.Now()
		cpu0 = cpuTime()
		for i := 0; b.Loop(); i++ {
			dir = filepath.Join(base, fmt.Sprint(i))
			err := runMirror(context.Background(), []string{"--server", env.URL, "--token", env.Tokens["yrd-audit:auditor"],
				"--log-key", vkey, "--dir", dir}, io.Discard, io.Discard)
			if err != nil {
				b.Fatal(err)
			}
		}
		rate(b, start)
	})
	b.Run("mirror-verify", func(b *testing.B) {
		start := time.Now()
		cpu0 = cpuTime()
		for b.Loop() {
			if err := runMirrorVerify([]string{"--dir", dir, "--log-key", vkey}, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		rate(b, start)
	})
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
