package ledger

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("TONGBAN_CRASH_CHILD_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	code := m.Run()
	cleanupFixtures()
	os.Exit(code)
}

// crashChild is the appending process that TestCrashRecovery kills. It
// prints "seq leafhash" for every acknowledged append, until killed.
func crashChild(dir string) {
	l, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				r, err := l.Append(context.Background(), testEntry(w*1_000_000+i))
				if err != nil {
					fmt.Println("append:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Fprintf(out, "%d %s\n", r.Seq, r.Hash)
				out.Flush()
				mu.Unlock()
				if i%50 == 0 {
					l.Checkpoint()
				}
			}
		}()
	}
	wg.Wait()
}

// TestCrashRecovery kills an appending process with SIGKILL several times
// and checks after each kill that the reopened ledger verifies and holds
// every entry the child saw acknowledged.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	acked := map[int64]string{}
	for round := range 4 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "TONGBAN_CRASH_CHILD_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		killAt := 200 + rand.IntN(800)
		n := 0
		for sc.Scan() {
			var seq int64
			var h string
			if _, err := fmt.Sscanf(sc.Text(), "%d %s", &seq, &h); err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			acked[seq] = h
			if n++; n == killAt {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		cmd.Wait()
		if n < killAt {
			t.Fatalf("round %d: child stopped after %d appends", round, n)
		}

		l, err := Open(Options{Dir: dir})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		rep, err := l.Verify(context.Background(), nil)
		if err != nil {
			t.Fatalf("round %d: verify after kill: %v", round, err)
		}
		for seq, h := range acked {
			r, err := l.Get(seq)
			if err != nil {
				t.Fatalf("round %d: acknowledged seq %d lost: %v", round, seq, err)
			}
			if r.Hash.String() != h {
				t.Fatalf("round %d: seq %d changed", round, seq)
			}
		}
		t.Logf("round %d: killed after %d acks; ledger has %d entries, %d acknowledged, verifies", round, n, rep.Size, len(acked))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
