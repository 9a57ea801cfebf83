package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// submitted submits a packet and returns its id.
func submitted(t *testing.T, gw *gatewayProc) string {
	t.Helper()
	code, _, b := submitPacket(t, gw)
	var p struct{ ID string }
	if code != 201 || json.Unmarshal(b, &p) != nil || p.ID == "" {
		t.Fatalf("submit: %d %s", code, b)
	}
	return p.ID
}

// forkSaved returns the fork directories under dir holding both signed
// checkpoints.
func forkSaved(t *testing.T, dir string) []string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(dir, "fork-*"))
	for _, d := range found {
		for _, f := range []string{"remembered.checkpoint", "presented.checkpoint"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err != nil || !bytes.Contains(b, []byte("\n\n— ")) {
				t.Errorf("%s/%s is not a signed checkpoint: %v %q", d, f, err, b)
			}
		}
	}
	return found
}

// TestMirrorFollowsAndRefusesFork mirrors a real gateway's log through the
// tiles API, grows it, follows it, checks the copy offline; then an
// attacker rewrites an entry with raw Badger and restarts the gateway (no
// witnesses): the mirror and a fetch client that remembered an earlier
// checkpoint both refuse it, naming the sizes and saving both checkpoints.
func TestMirrorFollowsAndRefusesFork(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logKey := logKeyFor(t, data)
	gw := serve(t, data)
	tok := gw.tokens["yrd-audit:auditor"]
	mdir := filepath.Join(t.TempDir(), "mirror")
	state := filepath.Join(t.TempDir(), "client", "checkpoint")
	for range 3 {
		submitted(t, gw)
	}
	mirror := func() (int, string, string) {
		return tongban(t, nil, "mirror", "--server", gw.url, "--token", tok, "--log-key", logKey, "--dir", mdir)
	}
	if code, out, errOut := mirror(); code != 0 || !strings.Contains(out, "mirrored 3 new entries") {
		t.Fatalf("mirror: %d\n%s%s", code, out, errOut)
	}
	id := submitted(t, gw)
	if code, out, errOut := mirror(); code != 0 || !strings.Contains(out, "mirrored 1 new entries: 4 verified entries") {
		t.Fatalf("mirror after growth: %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := tongban(t, nil, "mirror", "verify", "--dir", mdir, "--log-key", logKey); code != 0 || !strings.Contains(out, "OK: 4 entries") {
		t.Fatalf("mirror verify: %d\n%s%s", code, out, errOut)
	}

	// A client fetches a bundle and remembers its checkpoint (size 5: the
	// download entry is the fifth).
	bdir := t.TempDir()
	code, out, errOut := tongban(t, nil, "fetch", id, "--server", gw.url, "--token", tok, "-o", filepath.Join(bdir, "a.zip"),
		"--verify", "--log-key", logKey, "--state", state)
	if code != 0 || !strings.Contains(out, "first checkpoint of") || !strings.Contains(out, "NOT checked (no --witness given)") {
		t.Fatalf("fetch --verify: %d\n%s%s", code, out, errOut)
	}

	// Following: new entries that concern the agency are printed.
	var fout syncBuffer
	follow := exec.Command(tongbanBin(t), "mirror", "--server", gw.url, "--token", tok, "--log-key", logKey, "--dir", mdir,
		"--follow", "--interval", "100ms", "--agency", "jiashan-window")
	follow.Stdout, follow.Stderr = &fout, &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	id2 := submitted(t, gw)
	until(t, "the follower to print the new submission", func() bool {
		return strings.Contains(fout.String(), "packet.submitted packet "+id2+" by jiashan-window:")
	})
	follow.Process.Signal(os.Interrupt)
	if err := follow.Wait(); err != nil {
		t.Fatalf("follower: %v\n%s", err, fout.String())
	}
	code, out, _ = mirror()
	if code != 0 || !strings.Contains(out, "up to date: 6 entries") {
		t.Fatalf("mirror after following: %d\n%s", code, out)
	}

	// The attack: entry 1 rewritten, the rest re-chained, the tree hashes
	// rebuilt, every checkpoint past size 1 deleted; restart.
	gw.cmd.Process.Signal(os.Interrupt)
	gw.cmd.Wait()
	forgeLedger(t, data, 1, 1)
	gw = serve(t, data)
	tok = gw.tokens["yrd-audit:auditor"]
	submitted(t, gw) // size 7 now, over a different history

	code, out, errOut = mirror()
	if code != 1 || !strings.Contains(errOut, "FORK") || !strings.Contains(errOut, "held: size 6") || len(forkSaved(t, mdir)) != 1 {
		t.Fatalf("mirror of the forked log: exit %d\n%s%s", code, out, errOut)
	}
	// The copy held is untouched and still verifies.
	if code, out, errOut := tongban(t, nil, "mirror", "verify", "--dir", mdir, "--log-key", logKey); code != 0 || !strings.Contains(out, "OK: 6 entries") {
		t.Fatalf("mirror verify after the refused fork: %d\n%s%s", code, out, errOut)
	}

	code, out, errOut = tongban(t, nil, "fetch", id, "--server", gw.url, "--token", tok, "-o", filepath.Join(bdir, "b.zip"),
		"--verify", "--log-key", logKey, "--state", state)
	if code != 1 || !strings.Contains(out+errOut, "FORK") || !strings.Contains(out+errOut, "size 5 root") || len(forkSaved(t, filepath.Dir(state))) != 1 {
		t.Fatalf("fetch --verify of a bundle from the forked log: exit %d\n%s%s", code, out, errOut)
	}
	// Offline verify of the same bundle, online for the proof: the same.
	code, out, errOut = tongban(t, nil, "verify", filepath.Join(bdir, "b.zip"), "--log-key", logKey, "--state", state, "--server", gw.url, "--token", tok)
	if code != 1 || !strings.Contains(out+errOut, "FORK") {
		t.Fatalf("verify --server of a bundle from the forked log: exit %d\n%s%s", code, out, errOut)
	}
	// Offline alone, the remembered checkpoint cannot be checked: said so.
	code, out, errOut = tongban(t, nil, "verify", filepath.Join(bdir, "b.zip"), "--log-key", logKey, "--state", state)
	if code != 0 || !strings.Contains(out, "NOT checked against the remembered checkpoint (size 5)") {
		t.Fatalf("offline verify: exit %d\n%s%s", code, out, errOut)
	}
}
