package cosign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tongban/ledger"
	"tongban/ledger/format"
	"tongban/ledger/witness"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openLedger(t *testing.T, dir, keyFile string) *ledger.Ledger {
	t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: dir, KeyFile: keyFile, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func appendN(t *testing.T, l *ledger.Ledger, tag string, n int) {
	t.Helper()
	for i := range n {
		_, err := l.Append(context.Background(), ledger.Entry{Type: "test", Packet: tag, Payload: json.RawMessage(fmt.Sprintf(`{"i":%d,"tag":%q}`, i, tag))})
		if err != nil {
			t.Fatal(err)
		}
	}
}

type testWitness struct {
	w    *witness.Witness
	srv  *httptest.Server
	vkey string
}

func startWitnesses(t *testing.T, logKey string, n int) []*testWitness {
	t.Helper()
	var ws []*testWitness
	for i := range n {
		w, err := witness.Open(witness.Options{Dir: t.TempDir(), Name: fmt.Sprintf("w%d.test", i), Logs: []string{logKey}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(w)
		t.Cleanup(func() { srv.Close(); w.Close() })
		ws = append(ws, &testWitness{w: w, srv: srv, vkey: w.VerifierKey()})
	}
	return ws
}

func configs(ws []*testWitness) []Witness {
	var out []Witness
	for i, w := range ws {
		out = append(out, Witness{Name: fmt.Sprintf("w%d", i), URL: w.srv.URL, Key: w.vkey})
	}
	return out
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// clock is a settable clock for the grace.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestGatherQuorumGraceAndRestart(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, filepath.Join(dir, "ledger"), "")
	defer l.Close()
	ws := startWitnesses(t, l.VerifierKey(), 3)
	var keys []string
	for _, w := range ws {
		keys = append(keys, w.vkey)
	}
	policy, err := witness.NewPolicy(keys, 2)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	opts := Options{Witnesses: configs(ws), Quorum: 2, Dir: dir, Grace: 10 * time.Minute, Poll: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, Logger: quiet, Now: clk.now}
	g, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.SetLog(l)
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { g.Run(ctx) })
	defer func() { cancel(); run.Wait() }()

	appendN(t, l, "a", 10)
	served := func() ([]byte, int) {
		cp, err := g.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := policy.Check(cp)
		return cp, len(r.Valid)
	}
	waitFor(t, "three cosignatures on size 10", func() bool { cp, n := served(); return n == 3 && strings.Contains(string(cp), "\n10\n") })
	if err := g.Ready(); err != nil {
		t.Fatal(err)
	}
	cosigned, size := g.Cosigned()
	if size != 10 {
		t.Fatalf("cosigned size %d", size)
	}
	if _, err := policy.Check(cosigned); err != nil {
		t.Fatal(err)
	}
	// A consistency proof from an older size to the cosigned checkpoint.
	_, proof, err := g.CosignedProof(4)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := l.TreeHash(4)
	cp, _ := format.OpenCheckpoint(cosigned, l.VerifierKey())
	if err := format.CheckConsistency(proof, 4, old, 10, cp.Root); err != nil {
		t.Fatal(err)
	}

	// One witness goes away: the quorum still holds.
	ws[2].srv.Close()
	appendN(t, l, "b", 5)
	waitFor(t, "two cosignatures on size 15", func() bool { cp, n := served(); return n == 2 && strings.Contains(string(cp), "\n15\n") })
	if err := g.Ready(); err != nil {
		t.Fatal(err)
	}
	// A second: below quorum. Readiness says so at once; writes go on for
	// the grace, then are refused.
	ws[1].srv.Close()
	appendN(t, l, "c", 5)
	g.Checkpoint()
	waitFor(t, "readiness to fail", func() bool { return errors.Is(g.Ready(), ErrQuorumUnreachable) })
	if err := g.WriteErr(); err != nil {
		t.Fatalf("refused within the grace: %v", err)
	}
	clk.add(11 * time.Minute)
	if err := g.WriteErr(); !errors.Is(err, ErrQuorumUnreachable) {
		t.Fatalf("after the grace: %v", err)
	}
	waitFor(t, "status: w0 up to date, w1 failing 5 behind, quorum at 15", func() bool {
		st, _, quorum := g.Status()
		return quorum == 15 && st[1].Failures > 0 && !st[1].OK && st[1].Lag == 5 && st[0].Lag == 0 && st[0].OK
	})

	// The witness comes back on the same state: it is caught up and writes resume.
	srv := httptest.NewServer(ws[1].w)
	defer srv.Close()
	cancel()
	run.Wait()
	opts.Witnesses[1].URL = srv.URL
	g2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if c, n := g2.Cosigned(); n != 15 || c == nil {
		t.Fatalf("after a restart the cosigned checkpoint is of size %d", n)
	}
	if err := g2.CheckStart(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	g2.SetLog(l)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	run.Go(func() { g2.Run(ctx2) })
	waitFor(t, "quorum on size 20", func() bool { _, n := g2.Cosigned(); return n == 20 })
	if err := g2.WriteErr(); err != nil {
		t.Fatal(err)
	}
	if err := g2.Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckStartRefusesAFork(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "signer.key")
	honest := openLedger(t, filepath.Join(dir, "honest"), key)
	defer honest.Close()
	ws := startWitnesses(t, honest.VerifierKey(), 2)
	opts := Options{Witnesses: configs(ws), Quorum: 2, Dir: dir, Poll: 10 * time.Millisecond, Logger: quiet}
	g, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	g.SetLog(honest)
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { g.Run(ctx) })
	appendN(t, honest, "honest", 8)
	waitFor(t, "quorum on size 8", func() bool { _, n := g.Cosigned(); return n == 8 })
	cancel()
	run.Wait()

	// Another history under the same key, as long.
	forked := openLedger(t, filepath.Join(dir, "forked"), key)
	appendN(t, forked, "forked", 8)
	if _, err := forked.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	var fe *ForkError
	g2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.CheckStart(context.Background(), forked); !errors.As(err, &fe) || !strings.Contains(err.Error(), "size 8") {
		t.Fatalf("fork against cosign.json: %v", err)
	}
	// Without cosign.json, the witnesses refuse it.
	opts.Dir = t.TempDir()
	g3, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = g3.CheckStart(context.Background(), forked)
	if !errors.As(err, &fe) || len(fe.Evidence) != 2 || !strings.Contains(err.Error(), "witness w0") || !strings.Contains(err.Error(), "witness w1") {
		t.Fatalf("fork against the witnesses: %v", err)
	}
	forked.Close()
	// A shorter ledger (rolled back): the witnesses hold a larger tree.
	short := openLedger(t, filepath.Join(dir, "short"), key)
	defer short.Close()
	appendN(t, short, "honest", 3)
	short.Checkpoint()
	g4, _ := Open(opts)
	if err := g4.CheckStart(context.Background(), short); !errors.As(err, &fe) || !strings.Contains(err.Error(), "cosigned tree size 8") {
		t.Fatalf("rollback: %v", err)
	}
}
