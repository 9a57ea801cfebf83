package ledger

import (
	"bytes"
	"testing"
)

// TestCheckpointAt: a checkpoint signed for a past size carries the root
// the log had at that size (the one Checkpoint signed then), verifies under
// the log key, and is not stored; sizes outside the log are refused.
func TestCheckpointAt(t *testing.T) {
	l := openTest(t, t.TempDir())
	past := map[int64][]byte{}
	for i := 0; i < 70; i++ {
		mustAppend(t, l, testEntry(i))
		if i%9 == 0 || i == 63 || i == 64 {
			cp, err := l.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			past[l.Size()] = cp
		}
	}
	for size, want := range past {
		got, err := l.CheckpointAt(size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		c, err := OpenCheckpoint(got, l.VerifierKey())
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		w, _ := OpenCheckpoint(want, l.VerifierKey())
		if c != w {
			t.Fatalf("size %d: signed %+v, the log had %+v", size, c, w)
		}
		// Ed25519 is deterministic: the same text gives the same note.
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: notes differ", size)
		}
	}
	before, _ := l.Signed()
	if _, err := l.CheckpointAt(5); err != nil {
		t.Fatal(err)
	}
	if after, _ := l.Signed(); after != before {
		t.Fatalf("CheckpointAt changed the latest signed checkpoint: %+v -> %+v", before, after)
	}
	for _, size := range []int64{0, -1, l.Size() + 1} {
		if _, err := l.CheckpointAt(size); err == nil {
			t.Fatalf("size %d: no error", size)
		}
	}
}
