package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// TestTileEntryBundle reads entry bundles of several widths and offsets and
// splits them with torchwood's reader: each must hold exactly the stored
// canonical entries, and ranges past the tree are not found.
func TestTileEntryBundle(t *testing.T) {
	l := openTest(t, t.TempDir())
	const n = 600
	var want [][]byte
	for i := range n {
		want = append(want, mustAppend(t, l, testEntry(i)).Raw)
	}
	for _, r := range []struct{ from, n int64 }{{0, 256}, {256, 256}, {512, 88}, {512, 1}, {3, 7}, {599, 1}, {0, 0}} {
		b, err := l.EntryBundle(context.Background(), r.from, r.n)
		if err != nil {
			t.Fatalf("EntryBundle(%d, %d): %v", r.from, r.n, err)
		}
		rest := b
		for i := r.from; i < r.from+r.n; i++ {
			var e []byte
			if e, rest, err = torchwood.ReadTileEntry(rest); err != nil {
				t.Fatalf("EntryBundle(%d, %d): entry %d: %v", r.from, r.n, i, err)
			}
			if !bytes.Equal(e, want[i]) {
				t.Fatalf("EntryBundle(%d, %d): entry %d is %q, want %q", r.from, r.n, i, e, want[i])
			}
		}
		if len(rest) != 0 {
			t.Fatalf("EntryBundle(%d, %d): %d bytes after the last entry", r.from, r.n, len(rest))
		}
	}
	for _, r := range []struct{ from, n int64 }{{512, 89}, {600, 1}, {-1, 2}, {0, -1}} {
		if _, err := l.EntryBundle(context.Background(), r.from, r.n); !errors.Is(err, ErrNotFound) {
			t.Errorf("EntryBundle(%d, %d) = %v, want ErrNotFound", r.from, r.n, err)
		}
	}
	// The hash tiles over the same entries agree with the bundle's leaves.
	data, err := l.ReadTileData(tlog.Tile{H: torchwood.TileHeight, L: 0, N: 1, W: 256})
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.EntryBundle(context.Background(), 256, 256)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 256 {
		var e []byte
		e, b, _ = torchwood.ReadTileEntry(b)
		if h := tlog.RecordHash(e); !bytes.Equal(h[:], data[i*HashSize:(i+1)*HashSize]) {
			t.Fatalf("leaf %d of tile 0/1 does not hash entry %d of the bundle", i, 256+i)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.EntryBundle(ctx, 0, 256); !errors.Is(err, context.Canceled) {
		t.Errorf("EntryBundle with a cancelled context = %v", err)
	}
}

// TestFrontierPush holds the committer's frontier, kept as a stack, to the
// right edge frontierIndexes computes, and its root to tlog's, at every
// size up to 5,000.
func TestFrontierPush(t *testing.T) {
	var f frontier
	stored := make(map[int64]Hash)
	for n := int64(0); n < 5000; n++ {
		leaf := LeafHash([]byte(fmt.Sprint(n)))
		hashes, err := tlog.StoredHashesForRecordHash(n, leaf, f)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		next := tlog.StoredHashCount(n)
		for i, h := range hashes {
			stored[next+int64(i)] = h
		}
		f = f.push(next, hashes)
		want := frontierIndexes(n + 1)
		if len(f) != len(want) {
			t.Fatalf("size %d: %d hashes on the edge, want %d", n+1, len(f), len(want))
		}
		for i, x := range want {
			if f[i].index != x || f[i].hash != stored[x] {
				t.Fatalf("size %d: edge[%d] = %d, want %d", n+1, i, f[i].index, x)
			}
		}
		got, err := tlog.TreeHash(n+1, f)
		if err != nil {
			t.Fatal(err)
		}
		if wantRoot, _ := tlog.TreeHash(n+1, mapReader(stored)); got != wantRoot {
			t.Fatalf("size %d: root %x, want %x", n+1, got, wantRoot)
		}
	}
}

type mapReader map[int64]Hash

func (m mapReader) ReadHashes(indexes []int64) ([]Hash, error) {
	out := make([]Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m[x]
	}
	return out, nil
}
