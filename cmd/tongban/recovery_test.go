package main

import (
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCrashRecoveryMatchesRebuild: a gateway under load is killed with
// SIGKILL at random moments; each restart replays only what its views had
// not applied. At the end the views, as the restarts left them, must equal
// a full rebuild from the ledger key for key and byte for byte
// (`tongban rebuild --check` compares them).
func TestCrashRecoveryMatchesRebuild(t *testing.T) {
	const kills, workers = 8, 4
	data := filepath.Join(t.TempDir(), "data")
	cs := &crashState{t: t, status: map[string]string{}, entryChecked: map[string]bool{}}
	for round := 0; round < kills; round++ {
		gw := startCrashGW(t, data, nil)
		cl := &crashClient{gw: gw, start: time.Now(), hc: &http.Client{Timeout: 20 * time.Second}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		retries := cs.takePending()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs.work(cl, stop, retries)
			}()
		}
		time.Sleep(time.Duration(100+rand.IntN(400)) * time.Millisecond)
		gw.kill(t)
		close(stop)
		wg.Wait()
		cl.hc.CloseIdleConnections()
		if t.Failed() {
			t.FailNow()
		}
		if round%3 == 2 {
			// Views as the restart leaves them (the tail replayed) against a full rebuild.
			if code, out, errOut := tongban(t, nil, "rebuild", "--data", data, "--check"); code != 0 || !strings.Contains(out, "matched") {
				t.Fatalf("round %d: rebuild --check: exit %d\n%s\n%s", round, code, out, errOut)
			}
		}
	}
	// The last kill's tail, replayed by a restart, then a clean stop.
	gw := startCrashGW(t, data, nil)
	gw.interrupt(t)
	code, out, errOut := tongban(t, nil, "rebuild", "--data", data, "--check")
	if code != 0 || !strings.Contains(out, "matched") {
		t.Fatalf("rebuild --check: exit %d\n%s\n%s", code, out, errOut)
	}
	subs, acts := cs.acked()
	t.Logf("%d kills, %d submits and %d actions acknowledged; %s", kills, subs, acts, strings.TrimSpace(out))
}
