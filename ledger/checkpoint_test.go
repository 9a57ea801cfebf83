package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func storedCheckpointSizes(t *testing.T, l *Ledger) []int64 {
	t.Helper()
	var sizes []int64
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			sizes = append(sizes, int64(binary.BigEndian.Uint64(k[1:])))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sizes
}

// TestCheckpointCoversAcknowledged: however often checkpoints are asked
// for, each covers every entry acknowledged before the request, and no two
// signatures are closer than SignInterval.
func TestCheckpointCoversAcknowledged(t *testing.T) {
	const interval = 100 * time.Millisecond
	l, err := Open(Options{Dir: t.TempDir(), SignInterval: interval})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var mu sync.Mutex
	signed := map[int64]bool{}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				rec, err := l.Append(context.Background(), testEntry(w*10+i))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := l.Checkpoint()
				if err != nil {
					t.Error(err)
					return
				}
				cp, err := OpenCheckpoint(b, l.VerifierKey())
				if err != nil || cp.Size <= rec.Seq {
					t.Errorf("checkpoint of size %d after seq %d was acknowledged (%v)", cp.Size, rec.Seq, err)
				}
				mu.Lock()
				signed[cp.Size] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A lower bound on the time taken, not a speed: signatures are at least
	// interval apart, so at most elapsed/interval + 1 of them.
	if n, most := len(signed), int(time.Since(start)/interval)+1; n > most {
		t.Fatalf("%d checkpoints signed in %v, at most %d allowed", n, time.Since(start), most)
	}
}

// TestCheckpointRetention: of the checkpoints signed, the first of each
// KeepCheckpointEvery period and the newest are kept; verification checks
// the chain of those kept; reopening goes on from the newest.
func TestCheckpointRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	l, err := Open(Options{Dir: dir, SignInterval: time.Nanosecond, KeepCheckpointEvery: time.Hour, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	signEach := func(k int) {
		for range k {
			mustAppend(t, l, testEntry(n))
			n++
			time.Sleep(time.Microsecond) // SignInterval
			if _, err := l.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
	}
	signEach(10) // sizes 1..10 at 9:00: keeps 1
	now = now.Add(time.Hour)
	signEach(10) // 11..20 at 10:00: keeps 11
	now = now.Add(30 * time.Minute)
	signEach(5) // 21..25 still at 10:30: the newest, 25
	if got := storedCheckpointSizes(t, l); len(got) != 3 || got[0] != 1 || got[1] != 11 || got[2] != 25 {
		t.Fatalf("kept checkpoints %v, want [1 11 25]", got)
	}
	rep, err := l.Verify(context.Background(), nil)
	if err != nil || rep.Checkpoints != 3 || rep.Size != 25 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(Options{Dir: dir, SignInterval: time.Nanosecond, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	signEach(3) // 26..28: the one loaded (25) stays, 26 is kept as the first since the open, 28 the newest
	if got := storedCheckpointSizes(t, l); len(got) != 5 || got[3] != 26 || got[4] != 28 {
		t.Fatalf("after reopening, kept %v, want [1 11 25 26 28]", got)
	}
}

// TestVerifyFrom: verification resumed from a trusted checkpoint checks
// the tree against it and the entries after it; a checkpoint of another
// tree, or beyond the log, fails.
func TestVerifyFrom(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, SignInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustAppend(t, l, testEntry(i))
	}
	b60, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for i := 60; i < 100; i++ {
		mustAppend(t, l, testEntry(i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Another log signed with the same key, whose first 60 entries differ.
	other, err := Open(Options{Dir: t.TempDir(), KeyFile: filepath.Join(dir, "signer.key"), SignInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustAppend(t, other, testEntry(i+1000))
	}
	forged, err := other.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	other.Close()

	ro, err := Open(Options{Dir: dir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	open := func(b []byte) Checkpoint {
		cp, err := OpenCheckpoint(b, ro.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	var last int64
	rep, err := ro.VerifyFrom(context.Background(), open(b60), func(done, _ int64) { last = done })
	if err != nil || rep.From != 60 || rep.Size != 100 || last != 100 {
		t.Fatalf("from 60: %+v %v (progress %d)", rep, err, last)
	}
	full, err := ro.Verify(context.Background(), nil)
	if err != nil || full.Root != rep.Root {
		t.Fatalf("full: %+v %v", full, err)
	}
	var ve *VerifyError
	if _, err := ro.VerifyFrom(context.Background(), open(forged), nil); !errors.As(err, &ve) || ve.Seq != 59 {
		t.Fatalf("another tree's checkpoint: %v", err)
	}
	beyond := open(b60)
	beyond.Size = 101
	if _, err := ro.VerifyFrom(context.Background(), beyond, nil); !errors.As(err, &ve) || ve.Seq != 100 {
		t.Fatalf("beyond the log: %v", err)
	}
}
