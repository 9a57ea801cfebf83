package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func openTest(t testing.TB, dir string) *Ledger {
	t.Helper()
	l, err := Open(Options{Dir: dir, SignInterval: time.Millisecond}) // tests sign often
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testEntry(i int) Entry {
	return Entry{
		Type:    "packet.submitted",
		Actor:   Actor{Agency: "jiashan-window", Role: "submitter"},
		Packet:  fmt.Sprintf("pkt-%d", i%7),
		Payload: json.RawMessage(fmt.Sprintf(`{"item":"ENT-SETUP","n":%d,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`, i)),
	}
}

func mustAppend(t testing.TB, l *Ledger, e Entry) *Record {
	t.Helper()
	r, err := l.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

func hashes(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestProofsEverySize appends one entry at a time up to 300 and, at every
// size, checks the signed checkpoint with note.Open, the root against an
// independent compact range, and every inclusion and consistency proof with
// transparency-dev/merkle.
func TestProofsEverySize(t *testing.T) {
	l := openTest(t, t.TempDir())
	verifier, err := note.NewVerifier(l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	h := rfc6962.DefaultHasher
	rf := compact.RangeFactory{Hash: h.HashChildren}
	independent := rf.NewEmptyRange(0)
	var leaves [][]byte
	roots := [][]byte{h.EmptyRoot()}
	for size := int64(1); size <= 300; size++ {
		rec := mustAppend(t, l, testEntry(int(size)))
		if rec.Seq != size-1 {
			t.Fatalf("seq = %d, want %d", rec.Seq, size-1)
		}
		leaf := h.HashLeaf(rec.Raw)
		if string(leaf) != string(rec.Hash[:]) {
			t.Fatalf("leaf hash differs from rfc6962")
		}
		leaves = append(leaves, leaf)
		if err := independent.Append(leaf, nil); err != nil {
			t.Fatal(err)
		}
		want, _ := independent.GetRootHash(nil)
		roots = append(roots, want)

		signed, err := l.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(signed, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("note.Open: %v", err)
		}
		cp, err := ParseCheckpoint([]byte(n.Text))
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != size || string(cp.Root[:]) != string(want) || cp.Origin != DefaultOrigin {
			t.Fatalf("checkpoint %+v, want size %d root %x", cp, size, want)
		}
		for seq := int64(0); seq < size; seq++ {
			p, err := l.ProveInclusion(seq, size)
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", seq, size, err)
			}
			if err := proof.VerifyInclusion(h, uint64(seq), uint64(size), leaves[seq], hashes(p), want); err != nil {
				t.Fatalf("inclusion %d in %d: %v", seq, size, err)
			}
			if err := CheckInclusion(p, size, cp.Root, seq, rec.Hash); (err == nil) != (seq == size-1) {
				t.Fatalf("CheckInclusion of the newest leaf at seq %d: %v", seq, err)
			}
		}
		for from := int64(0); from <= size; from++ {
			p, err := l.ProveConsistency(from, size)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", from, size, err)
			}
			if err := proof.VerifyConsistency(h, uint64(from), uint64(size), hashes(p), roots[from], want); err != nil {
				t.Fatalf("consistency %d -> %d: %v", from, size, err)
			}
			var fromRoot Hash
			copy(fromRoot[:], roots[from])
			if err := CheckConsistency(p, from, fromRoot, size, cp.Root); err != nil {
				t.Fatalf("CheckConsistency %d -> %d: %v", from, size, err)
			}
		}
	}
	if _, err := l.ProveInclusion(300, 300); !errors.Is(err, ErrNotFound) {
		t.Errorf("proof beyond the log: %v", err)
	}
	if _, err := l.ProveConsistency(1, 301); !errors.Is(err, ErrNotFound) {
		t.Errorf("consistency beyond the log: %v", err)
	}
	if _, err := l.Verify(context.Background(), nil); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestChainAndLookup(t *testing.T) {
	l := openTest(t, t.TempDir())
	var recs []*Record
	for i := range 20 {
		recs = append(recs, mustAppend(t, l, testEntry(i)))
	}
	for i, r := range recs {
		want := Hash{}
		if i > 0 {
			want = recs[i-1].Hash
		}
		if r.Prev != want {
			t.Fatalf("entry %d prev = %s, want %s", i, r.Prev, want)
		}
		got, err := l.Get(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Raw) != string(r.Raw) || got.Hash != r.Hash {
			t.Fatalf("Get(%d) differs from what Append returned", i)
		}
	}
	byPkt, err := l.ByPacket("pkt-3")
	if err != nil {
		t.Fatal(err)
	}
	if len(byPkt) != 3 || byPkt[0].Seq != 3 || byPkt[1].Seq != 10 || byPkt[2].Seq != 17 {
		t.Fatalf("ByPacket(pkt-3) = %d entries", len(byPkt))
	}
	if got, _ := l.ByPacket("pkt-"); len(got) != 0 {
		t.Fatalf("prefix of a packet id matched %d entries", len(got))
	}
	if _, err := l.Get(20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get beyond end: %v", err)
	}
}

func TestAppendRejectsBadEntries(t *testing.T) {
	l := openTest(t, t.TempDir())
	bad := []Entry{
		{Actor: Actor{Agency: "a"}},                           // no type
		{Type: "x", Payload: json.RawMessage(`[1,2]`)},        // payload not an object
		{Type: "x", Payload: json.RawMessage(`{"a":`)},        // invalid JSON
		{Type: "x", Packet: "a\x00b"},                         // NUL in packet id
		{Type: "x", Payload: json.RawMessage(`{"ok":"<&>"}`)}, // fine: the control case
	}
	for i, e := range bad[:4] {
		if _, err := l.Append(context.Background(), e); err == nil {
			t.Errorf("case %d: accepted", i)
		}
	}
	if l.Size() != 0 {
		t.Fatalf("rejected entries changed the size to %d", l.Size())
	}
	mustAppend(t, l, bad[4])
	big := make([]byte, MaxEntrySize)
	for i := range big {
		big[i] = 'a'
	}
	if _, err := l.Append(context.Background(), Entry{Type: "x", Payload: json.RawMessage(`{"a":"` + string(big) + `"}`)}); err == nil {
		t.Fatal("oversized entry accepted")
	}
	if l.Size() != 1 {
		t.Fatalf("size %d after one good append", l.Size())
	}
}

func TestReopenKeepsStateAndKey(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		mustAppend(t, l, testEntry(i))
	}
	head, vkey := l.Head(), l.VerifierKey()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(context.Background(), testEntry(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	l2 := openTest(t, dir)
	if l2.Head() != head || l2.VerifierKey() != vkey {
		t.Fatalf("reopened head %+v key %q, want %+v %q", l2.Head(), l2.VerifierKey(), head, vkey)
	}
	r := mustAppend(t, l2, testEntry(100))
	if r.Seq != 100 {
		t.Fatalf("seq after reopen = %d", r.Seq)
	}
	if _, err := l2.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestSecondOpenerRefused(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir)
	_, err := Open(Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestConcurrentAppenders(t *testing.T) {
	l := openTest(t, t.TempDir())
	const writers, each = 64, 40
	var wg sync.WaitGroup
	seqs := make(chan int64, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := l.Append(context.Background(), testEntry(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
				if i%10 == 0 {
					if _, err := l.Checkpoint(); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(seqs)
	seen := make(map[int64]bool)
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
	if len(seen) != writers*each || l.Size() != writers*each {
		t.Fatalf("%d distinct seqs, size %d, want %d", len(seen), l.Size(), writers*each)
	}
	rep, err := l.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != writers*each || rep.Checkpoints == 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyProgress(t *testing.T) {
	l := openTest(t, t.TempDir())
	for i := range 3000 {
		mustAppend(t, l, testEntry(i))
	}
	var last, calls int64
	rep, err := l.Verify(context.Background(), func(done, total int64) {
		if total != 3000 || done < last {
			t.Errorf("progress(%d, %d) after %d", done, total, last)
		}
		last = done
		calls++
	})
	if err != nil {
		t.Fatal(err)
	}
	if last != 3000 || calls < 2 || rep.Size != 3000 {
		t.Fatalf("progress ended at %d after %d calls; report %+v", last, calls, rep)
	}
}

// tamper opens a fresh ledger of n entries, lets f change Badger directly,
// and returns what Verify says.
func tamper(t *testing.T, n int, f func(txn *badger.Txn) error) error {
	t.Helper()
	l := openTest(t, t.TempDir())
	for i := range n {
		mustAppend(t, l, testEntry(i))
	}
	if _, err := l.Verify(context.Background(), nil); err != nil {
		t.Fatalf("before tampering: %v", err)
	}
	if err := l.db.Update(f); err != nil {
		t.Fatal(err)
	}
	_, err := l.Verify(context.Background(), nil)
	return err
}

func wantBadSeq(t *testing.T, err error, seq int64) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("Verify = %v, want a VerifyError", err)
	}
	if ve.Seq != seq {
		t.Fatalf("Verify names seq %d (%s), want %d", ve.Seq, ve.Reason, seq)
	}
}

func TestTamperRewriteEntry(t *testing.T) {
	err := tamper(t, 200, func(txn *badger.Txn) error {
		raw, err := getValue(txn, entryKey(77))
		if err != nil {
			return err
		}
		e, err := ParseEntry(raw)
		if err != nil {
			return err
		}
		e.Actor.Agency = "forger" // a well-formed, canonical, but different entry
		raw, err = e.Marshal()
		if err != nil {
			return err
		}
		return txn.Set(entryKey(77), raw)
	})
	wantBadSeq(t, err, 77)
}

func TestTamperDeleteEntry(t *testing.T) {
	err := tamper(t, 200, func(txn *badger.Txn) error { return txn.Delete(entryKey(150)) })
	wantBadSeq(t, err, 150)
}

func TestTamperDeleteLastEntry(t *testing.T) {
	err := tamper(t, 200, func(txn *badger.Txn) error { return txn.Delete(entryKey(199)) })
	wantBadSeq(t, err, 199)
}

func TestTamperSwapEntries(t *testing.T) {
	err := tamper(t, 200, func(txn *badger.Txn) error {
		a, err := getValue(txn, entryKey(40))
		if err != nil {
			return err
		}
		b, err := getValue(txn, entryKey(41))
		if err != nil {
			return err
		}
		if err := txn.Set(entryKey(40), b); err != nil {
			return err
		}
		return txn.Set(entryKey(41), a)
	})
	wantBadSeq(t, err, 40)
}

// TestTamperRewriteWithTree rewrites an entry and recomputes every stored
// tree hash after it, as an attacker with disk access would: the chain
// and the signed checkpoints still give it away.
func TestTamperRewriteWithTree(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir)
	for i := range 100 {
		mustAppend(t, l, testEntry(i))
	}
	if _, err := l.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	err := l.db.Update(func(txn *badger.Txn) error {
		raw, _ := getValue(txn, entryKey(60))
		e, _ := ParseEntry(raw)
		e.Type = "packet.approved"
		raw, _ = e.Marshal()
		if err := txn.Set(entryKey(60), raw); err != nil {
			return err
		}
		// Rebuild the stored hashes from the altered entries.
		var all []byte
		read := tlog.HashReaderFunc(func(idx []int64) ([]Hash, error) {
			out := make([]Hash, len(idx))
			for i, x := range idx {
				copy(out[i][:], all[x*HashSize:])
			}
			return out, nil
		})
		for seq := int64(0); seq < 100; seq++ {
			raw, _ := getValue(txn, entryKey(seq))
			hs, err := tlog.StoredHashesForRecordHash(seq, LeafHash(raw), read)
			if err != nil {
				return err
			}
			for _, h := range hs {
				all = append(all, h[:]...)
			}
		}
		for c := 0; c*chunkHashes*HashSize < len(all); c++ {
			end := min(len(all), (c+1)*chunkHashes*HashSize)
			if err := txn.Set(chunkKey(int64(c)), all[c*chunkHashes*HashSize:end]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Verify(context.Background(), nil)
	wantBadSeq(t, err, 61) // entry 61's prev no longer matches entry 60
}

func TestTamperForgedCheckpoint(t *testing.T) {
	err := tamper(t, 10, func(txn *badger.Txn) error {
		skey, _, _ := GenerateKey(DefaultOrigin)
		s, _ := note.NewSigner(skey)
		signed, _ := note.Sign(&note.Note{Text: string(FormatCheckpoint(Checkpoint{Origin: DefaultOrigin, Size: 5}))}, s)
		return txn.Set(checkpointKey(5), signed)
	})
	wantBadSeq(t, err, 4)
	if !errorsContains(err, "checkpoint of size 5") {
		t.Fatalf("error does not name the checkpoint: %v", err)
	}
}

func errorsContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

func TestAppendTimeIsUTC(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	l, err := Open(Options{Dir: t.TempDir(), Now: func() time.Time { return time.Date(2026, 11, 27, 20, 0, 0, 0, loc) }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := mustAppend(t, l, testEntry(1))
	if !strings.Contains(string(r.Raw), `"time":"2026-11-27T12:00:00Z"`) {
		t.Fatalf("raw entry %s", r.Raw)
	}
}
