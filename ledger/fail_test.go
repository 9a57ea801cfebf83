package ledger

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"tongban/ledger/ledgertest"
)

// TestCommitFailureRollsBack makes the disk refuse Badger's writes under
// a running ledger: every append fails while it does, nothing of the
// failed batches is recorded (size, entries, packet index, tree and
// checkpoint are unchanged), Err reports the failure, and once the disk
// works again the ledger continues from the last durable entry and Err
// is cleared.
func TestCommitFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	disk := ledgertest.NewFailingDisk(filepath.Join(dir, "vlog"))
	// Badger logs each refused file; the test checks the failures itself.
	opts := Options{Dir: dir, BadgerOptions: disk.BadgerOptions, Logger: slog.New(slog.DiscardHandler)}
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	// 100 entries leave a partial chunk of tree hashes, which a failed
	// batch extends in memory and must give back.
	for i := range 100 {
		mustAppend(t, l, testEntry(i))
	}
	cp, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	head, signed := l.Head(), cp
	last, err := l.Get(head.Size - 1)
	if err != nil {
		t.Fatal(err)
	}

	if err := disk.Fail(); err != nil {
		t.Fatal(err)
	}
	failing := testEntry(0)
	failing.Packet = "never-recorded"
	for round := range 3 {
		// Concurrent appends, so failed batches hold several entries.
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Append(context.Background(), failing)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err == nil {
				t.Fatalf("round %d: an append succeeded on a failing disk", round)
			}
		}
		if l.Err() == nil {
			t.Fatalf("round %d: Err is nil after failed commits", round)
		}
	}
	if got := l.Head(); got != head {
		t.Fatalf("head moved while failing: %+v, was %+v", got, head)
	}
	if got, err := l.Checkpoint(); err != nil || string(got) != string(signed) {
		t.Fatalf("checkpoint changed while failing: %v\n%s", err, got)
	}
	if recs, err := l.ByPacket("never-recorded"); err != nil || len(recs) != 0 {
		t.Fatalf("packet index of failed appends: %d records, %v", len(recs), err)
	}
	// Nothing of the failed batches is in Badger either.
	err = l.db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(entryKey(head.Size)); !errors.Is(err, badger.ErrKeyNotFound) {
			t.Errorf("entry %d stored by a failed commit: %v", head.Size, err)
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: packetPrefix("never-recorded")})
		defer it.Close()
		if it.Rewind(); it.Valid() {
			t.Errorf("packet index key %q stored by a failed commit", it.Item().Key())
		}
		size, err := getInt(txn, keySize)
		if err != nil || size != head.Size {
			t.Errorf("stored size %d, %v; want %d", size, err, head.Size)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(context.Background(), nil); err != nil || rep.Size != head.Size || rep.Root != head.Root {
		t.Fatalf("verify while failing: %+v, %v", rep, err)
	}

	if err := disk.Heal(); err != nil {
		t.Fatal(err)
	}
	r := mustAppend(t, l, testEntry(100))
	if r.Seq != head.Size || r.Prev != last.Hash {
		t.Fatalf("first append after recovery: seq %d prev %s, want %d %s", r.Seq, r.Prev, head.Size, last.Hash)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err after a successful commit: %v", err)
	}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if _, err := l.Append(context.Background(), testEntry(101+w*10+i)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	want := head.Size + 1 + 160
	if l.Size() != want {
		t.Fatalf("size %d after recovery, want %d", l.Size(), want)
	}
	if _, err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Verify(context.Background(), nil); err != nil || rep.Size != want {
		t.Fatalf("verify after recovery: %+v, %v", rep, err)
	}
	after := l.Head()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l, err = Open(opts); err != nil {
		t.Fatalf("reopen after recovery: %v", err)
	}
	if l.Head() != after {
		t.Fatalf("reopened head %+v, want %+v", l.Head(), after)
	}
	if rep, err := l.Verify(context.Background(), nil); err != nil || rep.Size != want {
		t.Fatalf("verify after reopen: %+v, %v", rep, err)
	}
}
