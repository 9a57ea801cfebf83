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

func testGateway(t testing.TB) (*Gateway, storage.Store, *ledger.Ledger) {
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

	c, release := g.claimObjects()
	if err := g.claim(c, d); err != nil {
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

// TestClaimBeforePublish: a request claims an object before the store
// publishes it. A collection just before the claim takes an identical old
// copy, and the publication stores it again; one just after the claim
// keeps it. Either way the object is there when the request goes on.
func TestClaimBeforePublish(t *testing.T) {
	g, st, _ := testGateway(t)
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) } // everything is old
	collect := func(want int) {
		rep, err := g.CollectGarbage(context.Background(), time.Hour, false)
		if err != nil || rep.Deleted != want {
			t.Errorf("collection: %+v %v, want %d deleted", rep, err, want)
		}
	}
	g.cfg.Store = publishHook{Store: st, before: func() { collect(1) }, after: func() { collect(0) }}
	up, release := g.startUpload(nil)
	defer release()
	ctx := context.Background()
	d, _, err := g.storeManifest(ctx, up, &Manifest{Item: "ENT-DEREG-S"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, d); err != nil {
		t.Fatalf("stored object: %v", err)
	}
}

// publishHook stores an identical copy of each object first, as old
// garbage, and runs before and after around the BeforePublish of the Put.
type publishHook struct {
	storage.Store
	before, after func()
}

func (h publishHook) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	if _, err := h.Store.Put(ctx, bytes.NewReader(b), storage.PutOptions{}); err != nil {
		return storage.Info{}, err
	}
	claim := opts.BeforePublish
	opts.BeforePublish = func(d string) error {
		h.before()
		defer h.after()
		return claim(d)
	}
	return h.Store.Put(ctx, bytes.NewReader(b), opts)
}

// listHook runs a function after each listing, as if a request had run
// while the collector looked at the store.
type listHook struct {
	storage.Store
	after func()
}

func (h listHook) List(ctx context.Context, fn func(storage.Info) error) error {
	err := h.Store.List(ctx, fn)
	h.after()
	return err
}

// TestGCKeepsObjectsClaimedDuringCollection: a request that stores an
// identical copy of old garbage, records it and releases its claim while
// the collector is running must not lose the object: its entry can be
// newer than the collector's last read of the ledger.
func TestGCKeepsObjectsClaimedDuringCollection(t *testing.T) {
	g, st, _ := testGateway(t)
	d := put(t, st, "%PDF-1.7\nold garbage, stored again by a new request")
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	g.cfg.Store = listHook{Store: st, after: func() {
		c, release := g.claimObjects()
		if err := g.claim(c, d); err != nil {
			t.Error(err)
		}
		release() // the request is done; its entry is after the collector's scan
	}}
	rep, err := g.CollectGarbage(context.Background(), time.Hour, false)
	if err != nil || rep.Deleted != 0 {
		t.Fatalf("collected an object claimed during the collection: %+v %v", rep, err)
	}
	if _, err := st.Stat(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}
