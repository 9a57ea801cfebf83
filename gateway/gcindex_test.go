package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tongban/ledger"
	"tongban/ledger/format"
	"tongban/storage"
)

// record appends a packet.submitted entry naming the given objects, as a
// submission does (without the view).
func record(tb testing.TB, l *ledger.Ledger, packet string, manifest string, materials ...string) {
	tb.Helper()
	pl := map[string]any{"manifest": manifest}
	var ms []materialDigest
	for _, d := range materials {
		ms = append(ms, materialDigest{Kind: "application", SHA256: d, Size: 1})
	}
	pl["materials"] = ms
	b, err := json.Marshal(pl)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = l.Append(context.Background(), ledger.Entry{Type: EntrySubmitted, Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"}, Packet: packet, Payload: b})
	if err != nil {
		tb.Fatal(err)
	}
}

// store stores s as a request does: claimed before it is published.
func store(tb testing.TB, g *Gateway, s string) (string, func()) {
	tb.Helper()
	c, release := g.claimObjects()
	info, err := g.cfg.Store.Put(context.Background(), strings.NewReader(s), storage.PutOptions{Size: -1, BeforePublish: c.hook(g)})
	if err != nil {
		tb.Fatal(err)
	}
	return info.SHA256, release
}

func collect(t *testing.T, g *Gateway, grace time.Duration, dry bool) *GCReport {
	t.Helper()
	rep, err := g.CollectGarbage(context.Background(), grace, dry)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestGCIncremental: after the first (full) collection, a collection looks
// only at what was stored since, keeps what the ledger names, deletes the
// rest past the grace, and leaves objects it was never told of to a full
// collection.
func TestGCIncremental(t *testing.T) {
	g, st, l := testGateway(t)
	ctx := context.Background()
	old := put(t, st, "stored before the first collection, unnamed")
	if rep := collect(t, g, time.Hour, false); !rep.Full || rep.Objects != 1 || rep.Young != 1 {
		t.Fatalf("first collection: %+v", rep)
	}

	named, r1 := store(t, g, "named by an entry")
	garbage, r2 := store(t, g, "stored by a refused request")
	record(t, l, "pk-1", named)
	r1()
	r2()
	behind := put(t, st, "stored behind the gateway's back")

	rep := collect(t, g, time.Hour, false)
	if rep.Full || rep.Referenced != 1 || rep.Young != 2 || rep.Deleted != 0 { // young: garbage and old
		t.Fatalf("incremental, all young: %+v", rep)
	}
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	rep = collect(t, g, time.Hour, true)
	if rep.Full || rep.Deleted != 2 || rep.Referenced != 0 || rep.Objects != 2 {
		t.Fatalf("incremental dry run: %+v", rep)
	}
	rep = collect(t, g, time.Hour, false)
	if rep.Deleted != 2 {
		t.Fatalf("incremental: %+v", rep)
	}
	for d, want := range map[string]bool{named: true, garbage: false, old: false, behind: true} {
		if _, err := st.Stat(ctx, d); (err == nil) != want {
			t.Errorf("%s: stored = %v, want %v", d[:8], err == nil, want)
		}
	}
	if rep := collect(t, g, time.Hour, false); rep.Objects != 0 || rep.Deleted != 0 {
		t.Fatalf("nothing new: %+v", rep)
	}
	rep, err := g.CollectAllGarbage(ctx, time.Hour, false)
	if err != nil || !rep.Full || rep.Deleted != 1 || rep.Objects != 2 || rep.Referenced != 1 {
		t.Fatalf("full collection: %+v %v", rep, err)
	}
	if _, err := st.Stat(ctx, behind); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("full collection left %s: %v", behind[:8], err)
	}
	if _, err := st.Stat(ctx, named); err != nil {
		t.Fatal(err)
	}
}

// statHook runs a function before each Stat: a request recording an entry
// while the collector looks at the object.
type statHook struct {
	storage.Store
	before func(string)
}

func (h statHook) Stat(ctx context.Context, d string) (storage.Info, error) {
	h.before(d)
	return h.Store.Stat(ctx, d)
}

// TestGCNamedDuringCollection: an entry appended after the collector read
// the ledger, naming an old object it is about to delete, keeps it.
func TestGCNamedDuringCollection(t *testing.T) {
	g, st, l := testGateway(t)
	collect(t, g, time.Hour, false)
	d, release := store(t, g, "old, recorded while the collector looks")
	release()
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	var once sync.Once
	g.cfg.Store = statHook{Store: st, before: func(string) { once.Do(func() { record(t, l, "pk-late", d) }) }}
	if rep := collect(t, g, time.Hour, false); rep.Deleted != 0 || rep.Referenced != 1 {
		t.Fatalf("collected an object named during the collection: %+v", rep)
	}
	if _, err := st.Stat(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// TestGCIndexLost: when the state database is dropped (a rebuild of the
// views), the next collection lists the whole store again and rebuilds its
// index from the whole ledger.
func TestGCIndexLost(t *testing.T) {
	g, st, l := testGateway(t)
	named, release := store(t, g, "named")
	record(t, l, "pk-1", named)
	release()
	collect(t, g, time.Hour, false)
	old := put(t, st, "unnamed, never noted")
	if err := g.state.reset(); err != nil {
		t.Fatal(err)
	}
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	rep := collect(t, g, time.Hour, false)
	if !rep.Full || rep.Deleted != 1 || rep.Referenced != 1 {
		t.Fatalf("after the index was lost: %+v", rep)
	}
	if _, err := st.Stat(context.Background(), named); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(context.Background(), old); err == nil {
		t.Fatal("unnamed object kept")
	}
}

// genPackets appends n packets' submissions (a manifest and two materials
// each) with as many goroutines as needed to fill the ledger's group
// commits. With objects, each object is stored through the claims, as a
// request stores it; one packet in ten is then refused (its objects stay
// unnamed: garbage). Without, the entries name objects that are not stored,
// which is enough for a ledger the incremental collector reads no further
// than its watermark.
func genGCPackets(tb testing.TB, g *Gateway, prefix string, n int, objects bool) {
	tb.Helper()
	const workers = 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("%s-%07d", prefix, i)
				var ds []string
				var releases []func()
				for k := range 3 {
					body := fmt.Sprintf("%s object %d %x", id, k, bytes.Repeat([]byte{byte(k)}, 64))
					if !objects {
						s := sha256.Sum256([]byte(body))
						ds = append(ds, hex.EncodeToString(s[:]))
						continue
					}
					c, release := g.claimObjects()
					info, err := g.cfg.Store.Put(context.Background(), strings.NewReader(body), storage.PutOptions{Size: -1, BeforePublish: c.hook(g)})
					if err != nil {
						errs <- err
						return
					}
					ds, releases = append(ds, info.SHA256), append(releases, release)
				}
				if !objects || i%10 != 0 {
					pl, _ := json.Marshal(map[string]any{"manifest": ds[0], "materials": []materialDigest{{Kind: "a", SHA256: ds[1], Size: 1}, {Kind: "b", SHA256: ds[2], Size: 1}}})
					pl, _ = format.Canonicalize(pl) // the ledger takes canonical payloads only
					if _, err := g.cfg.Ledger.Append(context.Background(), ledger.Entry{Type: EntrySubmitted, Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"}, Packet: id, Payload: pl}); err != nil {
						errs <- err
						return
					}
				}
				for _, r := range releases {
					r()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// peakRSS resets the process's peak resident size (Linux) and returns the
// resident size now and a func that reads the peak since.
func peakRSS(tb testing.TB) (int64, func() int64) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Fatalf("reset peak RSS: %v", err)
	}
	read := func(field string) int64 {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			tb.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
		tb.Fatalf("no %s in /proc/self/status", field)
		return 0
	}
	return read("VmRSS:"), func() int64 { return read("VmHWM:") }
}

// BenchmarkGCHourly: the collection that follows 1,000 new packets (one in
// ten refused, its objects garbage past the grace) on a ledger of many old
// packets, after a first, full collection. The old packets' objects are
// not stored (the incremental collection does not list the store); set
// TONGBAN_GC_OLD to choose how many old packets (default 10000).
func BenchmarkGCHourly(b *testing.B) {
	old := 10000
	if s := os.Getenv("TONGBAN_GC_OLD"); s != "" {
		var err error
		if old, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	g, _, l := testGateway(b)
	genGCPackets(b, g, "old", old, false)
	if _, err := g.CollectGarbage(context.Background(), time.Hour, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var peak, grew int64
	for i := range b.N {
		b.StopTimer()
		genGCPackets(b, g, "new"+strconv.Itoa(i), 1000, true)
		runtime.GC()
		before, rss := peakRSS(b)
		b.StartTimer()
		rep, err := g.CollectGarbage(context.Background(), -time.Second, false)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		peak = max(peak, rss())
		grew = max(grew, rss()-before)
		if rep.Full || rep.Deleted != 300 {
			b.Fatalf("collection %+v, want 300 deleted", rep)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(grew)/(1<<20), "RSS-growth-MiB")
	b.ReportMetric(float64(l.Size()), "entries")
}

// statAfterHook runs a function after each Stat.
type statAfterHook struct {
	storage.Store
	after func(string)
}

func (h statAfterHook) Stat(ctx context.Context, d string) (storage.Info, error) {
	info, err := h.Store.Stat(ctx, d)
	h.after(d)
	return info, err
}

// TestGCKeepsNoteRewrittenDuringCollection: the collector finds no object
// for a note (its request failed before publishing), and meanwhile another
// request claims and stores the same bytes, then fails too. The note must
// survive, so that a later collection takes the object.
func TestGCKeepsNoteRewrittenDuringCollection(t *testing.T) {
	g, st, _ := testGateway(t)
	collect(t, g, time.Hour, false)
	const body = "stored by a request that failed, twice"
	c, release := g.claimObjects()
	d := put(t, st, body)
	if err := g.claim(c, d); err != nil {
		t.Fatal(err)
	}
	release()
	if err := st.Delete(context.Background(), d); err != nil { // as if never published
		t.Fatal(err)
	}
	g.cfg.Store = statAfterHook{Store: st, after: func(string) {
		_, release := store(t, g, body)
		release()
	}}
	g.cfg.Now = func() time.Time { return time.Now().Add(48 * time.Hour) }
	if rep := collect(t, g, time.Hour, false); rep.Deleted != 0 {
		t.Fatalf("collected an object claimed during the collection: %+v", rep)
	}
	g.cfg.Store = st
	if rep := collect(t, g, time.Hour, false); rep.Deleted != 1 {
		t.Fatalf("the object of the rewritten note was not collected: %+v", rep)
	}
}
