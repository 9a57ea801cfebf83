package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"tongban/ledger"
	"tongban/ledger/witness"
)

// witnessLog is a real ledger with a signed checkpoint for every size.
type witnessLog struct {
	l   *ledger.Ledger
	cps map[int64][]byte
}

// newWitnessLog makes a ledger of n entries whose payloads carry tag, so
// two logs under one key (a fork) differ from the first entry on.
func newWitnessLog(t *testing.T, origin, keyFile, tag string, n int) *witnessLog {
	t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: t.TempDir(), Origin: origin, KeyFile: keyFile,
		SignInterval: time.Millisecond, // a checkpoint at every size
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	g := &witnessLog{l: l, cps: map[int64][]byte{}}
	for i := range n {
		_, err := l.Append(context.Background(), ledger.Entry{
			Type:    "packet.submitted",
			Actor:   ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
			Packet:  "pkt-" + tag,
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d,"tag":%q}`, i, tag)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if g.cps[l.Size()], err = l.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func (g *witnessLog) proof(t *testing.T, from, to int64) []ledger.Hash {
	p, err := g.l.ProveConsistency(from, to)
	if err != nil {
		t.Error(err)
	}
	return p
}

// witnessProc is a `tongban witness serve` process.
type witnessProc struct {
	url    string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func startWitness(t *testing.T, args ...string) *witnessProc {
	t.Helper()
	cmd := exec.Command(tongbanBin(t), append([]string{"witness", "serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	p := &witnessProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`listening on (http://\S+?);`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		close(urls)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case p.url = <-urls:
	case <-time.After(30 * time.Second):
	}
	if p.url == "" {
		p.kill()
		t.Fatalf("tongban witness serve did not start:\n%s", p.stderr)
	}
	return p
}

// kill ends the process with SIGKILL and waits for it (once).
func (p *witnessProc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// twVerifier is torchwood's cosignature verifier for the witness key in dir.
func twVerifier(t *testing.T, dir string) *torchwood.CosignatureVerifier {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "witness.key"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || raw[0] != 4 {
		t.Fatalf("witness key is not a cosignature/v1 key")
	}
	s, err := torchwood.NewCosignatureSigner(parts[2], ed25519.NewKeyFromSeed(raw[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return s.Verifier()
}

func TestWitnessCLI(t *testing.T) {
	ctx := context.Background()
	bin := tongbanBin(t)
	dir := filepath.Join(t.TempDir(), "witness")
	keyFile := filepath.Join(t.TempDir(), "signer.key")
	a := newWitnessLog(t, "tongban.test/log", keyFile, "a", 20)
	fork := newWitnessLog(t, "tongban.test/log", keyFile, "fork", 20)
	other := newWitnessLog(t, "tongban.test/other", "", "o", 3)
	stranger := newWitnessLog(t, "tongban.test/stranger", "", "s", 3)

	// The key: created on first use (0600), the same afterwards.
	out, err := exec.Command(bin, "witness", "key", "--data", dir, "--name", "audit.yrd/witness").CombinedOutput()
	if err != nil {
		t.Fatalf("witness key: %v\n%s", err, out)
	}
	vkey := strings.TrimSpace(string(out))
	if out2, err := exec.Command(bin, "witness", "key", "--data", dir).CombinedOutput(); err != nil || strings.TrimSpace(string(out2)) != vkey {
		t.Fatalf("witness key again: %v %s, want %s", err, out2, vkey)
	}
	if st, err := os.Stat(filepath.Join(dir, "witness.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	tw := twVerifier(t, dir)
	if tw.String() != vkey || !strings.HasPrefix(vkey, "audit.yrd/witness+") {
		t.Fatalf("witness key prints %q; torchwood derives %q", vkey, tw.String())
	}
	policy, err := witness.NewPolicy([]string{vkey}, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Usage errors exit 2.
	for _, args := range [][]string{{"witness"}, {"witness", "serve", "--data", dir}, {"witness", "serve", "--log", a.l.VerifierKey()}, {"witness", "frob"}} {
		if err := exec.Command(bin, args...).Run(); exitStatus(err) != 2 {
			t.Errorf("%q: %v, want exit 2", args, err)
		}
	}

	// The second log's key comes from a file; flags in any order.
	otherKey := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(otherKey, []byte(other.l.VerifierKey()+"\n"), 0o644)
	w := startWitness(t, "--log", a.l.VerifierKey(), "--data", dir, "--log", otherKey)

	var old int64
	for _, size := range []int64{1, 2, 5, 11, 20} {
		cosig, err := witness.AddCheckpoint(ctx, w.url, old, a.proof(t, old, size), a.cps[size])
		if err != nil {
			t.Fatalf("cosign %d from %d: %v", size, old, err)
		}
		signed, _ := witness.AppendCosignatures(a.cps[size], cosig)
		if _, err := note.Open(signed, note.VerifierList(tw)); err != nil {
			t.Fatalf("torchwood rejects the cosignature of size %d: %v", size, err)
		}
		if _, err := policy.Check(signed); err != nil {
			t.Fatal(err)
		}
		old = size
	}
	var behind *witness.BehindError
	if _, err := witness.AddCheckpoint(ctx, w.url, 11, a.proof(t, 11, 20), a.cps[20]); !errors.As(err, &behind) || behind.Size != 20 {
		t.Fatalf("stale old size: %v", err)
	}
	if _, err := witness.AddCheckpoint(ctx, w.url, 20, nil, fork.cps[20]); !errors.Is(err, witness.ErrFork) {
		t.Fatalf("fork at the same size: %v", err)
	}
	p := a.proof(t, 11, 20)
	p[len(p)-1][3] ^= 0x40
	if _, err := witness.AddCheckpoint(ctx, w.url, 11, p, a.cps[20]); !errors.As(err, &behind) {
		t.Fatalf("stale, with a bad proof: %v", err) // the size is checked first
	}
	if _, err := witness.AddCheckpoint(ctx, w.url, 0, nil, stranger.cps[3]); !errors.Is(err, witness.ErrUnknownLog) {
		t.Fatalf("unknown log: %v", err)
	}
	if _, err := witness.AddCheckpoint(ctx, w.url, 0, nil, other.cps[3]); err != nil {
		t.Fatalf("second log: %v", err)
	}

	// SIGTERM stops it cleanly; after a restart it remembers, and holds
	// the evidence of the fork.
	w.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-w.done; err != nil {
		t.Fatalf("witness after SIGTERM: %v\n%s", err, w.stderr)
	}
	w.done <- nil
	w = startWitness(t, "--data", dir, "--log", a.l.VerifierKey())
	if _, err := witness.AddCheckpoint(ctx, w.url, 0, nil, a.cps[1]); !errors.As(err, &behind) || behind.Size != 20 {
		t.Fatalf("after restart: %v", err)
	}
	if ev, err := os.ReadDir(filepath.Join(dir, "evidence")); err != nil || len(ev) != 1 {
		t.Fatalf("evidence of the fork: %v %v", ev, err)
	}
	// A second witness on the same directory is refused.
	if out, err := exec.Command(bin, "witness", "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log", a.l.VerifierKey()).CombinedOutput(); err == nil || !strings.Contains(string(out), "in use") {
		t.Fatalf("second witness on one directory: %v\n%s", err, out)
	}
}

func exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

// TestWitnessCrash kills the witness with SIGKILL at random points while
// two histories of one log (a fork under the same key) ask it to cosign,
// 50 times, and checks that no size was ever cosigned with two roots and
// that its state never went back behind a cosignature it returned.
func TestWitnessCrash(t *testing.T) {
	const logSize = 150
	keyFile := filepath.Join(t.TempDir(), "signer.key")
	logs := []*witnessLog{
		newWitnessLog(t, "tongban.test/log", keyFile, "a", logSize),
		newWitnessLog(t, "tongban.test/log", keyFile, "b", logSize),
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("kill points from seed %d", seed)

	var mu sync.Mutex
	cosigned := map[int64]ledger.Hash{} // every size cosigned, and its root
	var maxCosigned, lastKnown int64
	var tw *torchwood.CosignatureVerifier
	record := func(size int64, cosig []byte, from *witnessLog) {
		signed, err := witness.AppendCosignatures(from.cps[size], cosig)
		if err == nil {
			_, err = note.Open(signed, note.VerifierList(tw))
		}
		if err != nil {
			t.Errorf("cosignature of size %d does not verify with torchwood: %v", size, err)
			return
		}
		root := from.l.Head().Root
		if size != from.l.Size() {
			cp, err := ledger.OpenCheckpoint(from.cps[size], from.l.VerifierKey())
			if err != nil {
				t.Fatal(err)
			}
			root = cp.Root
		}
		mu.Lock()
		defer mu.Unlock()
		if r, ok := cosigned[size]; ok && r != root {
			t.Errorf("size %d cosigned with two roots: %v and %v", size, r, root)
		}
		cosigned[size] = root
		maxCosigned = max(maxCosigned, size)
	}

	var kills, cosigns, refusals int
	for i := range 50 {
		w := startWitness(t, "--data", dir, "--log", logs[0].l.VerifierKey())
		if tw == nil {
			tw = twVerifier(t, dir)
		}
		ctx := context.Background()

		// What does it know now? Never less than it cosigned, never less
		// than before; and exactly one history is accepted at that size.
		var known int64
		var behind *witness.BehindError
		prevMax := maxCosigned
		if cosig, err := witness.AddCheckpoint(ctx, w.url, 0, nil, logs[i%2].cps[1]); errors.As(err, &behind) {
			known = behind.Size
		} else if err == nil && prevMax == 0 {
			record(1, cosig, logs[i%2]) // it had cosigned nothing yet
			known = 1
		} else if err == nil {
			t.Fatalf("restart %d: cosigned from size 0 after having cosigned size %d", i, prevMax)
		} else {
			t.Fatalf("restart %d: probe: %v\n%s", i, err, w.stderr)
		}
		if known < prevMax || known < lastKnown {
			t.Fatalf("restart %d: witness knows size %d, but it had cosigned size %d and known %d before", i, known, prevMax, lastKnown)
		}
		lastKnown = known
		accepted := 0
		for _, g := range logs {
			cosig, err := witness.AddCheckpoint(ctx, w.url, known, nil, g.cps[known])
			if err == nil {
				accepted++
				record(known, cosig, g)
			} else if !errors.Is(err, witness.ErrFork) {
				t.Fatalf("restart %d: same size %d again: %v", i, known, err)
			}
		}
		if accepted != 1 {
			t.Fatalf("restart %d: %d histories accepted at size %d", i, accepted, known)
		}

		// Three clients push both histories until the witness is killed.
		var wg sync.WaitGroup
		for c := range 3 {
			rng := rand.New(rand.NewPCG(rng.Uint64(), uint64(c))) // one per goroutine
			wg.Go(func() {
				believed := known
				for {
					g := logs[(c+rng.IntN(3))%2]
					to := min(believed+int64(1+rng.IntN(3)), logSize)
					cosig, err := witness.AddCheckpoint(ctx, w.url, believed, g.proof(t, believed, to), g.cps[to])
					var behind *witness.BehindError
					switch {
					case err == nil:
						record(to, cosig, g)
						mu.Lock()
						cosigns++
						mu.Unlock()
						believed = to
					case errors.As(err, &behind):
						believed = behind.Size
					case errors.Is(err, witness.ErrFork), errors.Is(err, witness.ErrBadProof):
						mu.Lock()
						refusals++
						mu.Unlock()
					default:
						return // killed
					}
				}
			})
		}
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		w.kill()
		kills++
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d kills, %d cosignatures returned, %d fork refusals, %d sizes cosigned, last known size %d", kills, cosigns, refusals, len(cosigned), lastKnown)
	if cosigns == 0 || refusals == 0 {
		t.Fatalf("the crash loop did not exercise the witness: %d cosignatures, %d refusals", cosigns, refusals)
	}
}
