package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"tongban/ledger"
	"tongban/storage"
	fsstore "tongban/storage/fs"
)

func testGateway(t *testing.T) (*Gateway, storage.Store, *ledger.Ledger) {
	t.Helper()
	dir := t.TempDir()
	st, err := fsstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger")})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), Config{Catalog: DefaultCatalog(), Agencies: DemoAgencies(), Store: st, Ledger: l,
		StateDir: filepath.Join(dir, "state"), ApplicantKey: bytes.Repeat([]byte{7}, 32),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(); l.Close() })
	return g, st, l
}

func put(t *testing.T, st storage.Store, s string) string {
	t.Helper()
	info, err := st.Put(context.Background(), bytes.NewReader([]byte(s)), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	return info.SHA256
}

// TestGCKeepsClaimedObjects: an object a request has stored but not yet
// recorded is not collected, however old; once released, it is.
func TestGCKeepsClaimedObjects(t *testing.T) {
	g, st, _ := testGateway(t)
	ctx := context.Background()
	d := put(t, st, "%PDF-1.7\nstored by a request still running")
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) } // everything is old

	rctx, release := g.claimObjects(ctx)
	if err := g.claim(rctx, d); err != nil {
		t.Fatal(err)
	}
	rep, err := g.CollectGarbage(ctx, time.Hour, false)
	if err != nil || rep.Deleted != 0 {
		t.Fatalf("claimed object collected: %+v %v", rep, err)
	}
	release()
	rep, err = g.CollectGarbage(ctx, time.Hour, true)
	if err != nil || rep.Deleted != 1 || !rep.DryRun {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if _, err := st.Stat(ctx, d); err != nil {
		t.Fatalf("dry run deleted: %v", err)
	}
	rep, err = g.CollectGarbage(ctx, time.Hour, false)
	if err != nil || rep.Deleted != 1 {
		t.Fatalf("released object not collected: %+v %v", rep, err)
	}
	if _, err := st.Stat(ctx, d); err == nil {
		t.Fatal("object still there")
	}
}

// TestClaimNoticesCollectedObject: if the collector took an identical old
// object just before a request claimed it, the request fails cleanly
// instead of recording an entry that names nothing.
func TestClaimNoticesCollectedObject(t *testing.T) {
	g, st, _ := testGateway(t)
	ctx, release := g.claimObjects(context.Background())
	defer release()
	d := put(t, st, "%PDF-1.7\ncollected in between")
	if err := st.Delete(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := g.claim(ctx, d); err == nil {
		t.Fatal("claim of a vanished object succeeded")
	}
}
