package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"tongban/ledger"
	fsstore "tongban/storage/fs"
)

// viewsGateway is a gateway whose clock the test sets (for deadlines).
func viewsGateway(t testing.TB, dir string, now func() time.Time) (*Gateway, *ledger.Ledger) {
	t.Helper()
	st, err := fsstore.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Options{Dir: filepath.Join(dir, "ledger")})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), Config{Catalog: DefaultCatalog(), Agencies: DemoAgencies(), Store: st, Ledger: l,
		StateDir: filepath.Join(dir, "state"), ApplicantKey: bytes.Repeat([]byte{7}, 32), Now: now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	return g, l
}

var (
	viewOrigin   = Principal{Agency: "jiashan-window", Role: RoleSubmitter}
	viewReviewer = Principal{Agency: "qingpu-window", Role: RoleReviewer}
	viewAuditor  = Principal{Agency: "yrd-audit", Role: RoleAuditor}
)

// submitSimple submits a small RES-HPF-PROOF packet from Jiashan to Qingpu.
func submitSimple(t testing.TB, g *Gateway, n int) *Packet {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	manifest, _ := json.Marshal(map[string]any{"item": "RES-HPF-PROOF", "destination": "qingpu-window",
		"applicant": map[string]string{"type": "person", "name": "张三", "id": "310118199003070016"},
		"materials": []map[string]string{{"kind": "consent_form", "filename": "a.pdf"}, {"kind": "applicant_id", "filename": "b.pdf"}}})
	w, _ := mw.CreateFormField("manifest")
	w.Write(manifest)
	for _, k := range []string{"consent_form", "applicant_id"} {
		w, _ := mw.CreateFormFile(k, map[string]string{"consent_form": "a.pdf", "applicant_id": "b.pdf"}[k])
		fmt.Fprintf(w, "%%PDF-1.7\n%s %d", k, n%64) // few distinct objects
	}
	mw.Close()
	p, err := g.Submit(context.Background(), viewOrigin, nil, partsOf(&body, mw.Boundary()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// randomClock returns a clock that answers a random day among the next 30.
func randomClock(base time.Time) (func() time.Time, func(time.Time)) {
	var mu sync.Mutex
	var fixed time.Time
	return func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			if !fixed.IsZero() {
				return fixed
			}
			return base.Add(time.Duration(rand.IntN(30)) * 24 * time.Hour)
		}, func(t time.Time) {
			mu.Lock()
			fixed = t
			mu.Unlock()
		}
}

// pageAll reads every page of q as who.
func pageAll(t *testing.T, g *Gateway, who Principal, q ListQuery, between func()) []*Packet {
	t.Helper()
	var all []*Packet
	for {
		page, err := g.List(context.Background(), who, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Packets) > q.Limit {
			t.Fatalf("page of %d packets, limit %d", len(page.Packets), q.Limit)
		}
		all = append(all, page.Packets...)
		if page.NextCursor == "" {
			return all
		}
		q.Cursor = page.NextCursor
		if between != nil {
			between()
		}
	}
}

// TestListPagesStableUnderInserts: while packets are submitted and
// received, paging through the inbox (by deadline) and the outbox (by
// submission) yields every packet present at the start exactly once, in
// order, and nothing twice.
func TestListPagesStableUnderInserts(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now, fix := randomClock(base)
	g, l := viewsGateway(t, t.TempDir(), now)
	defer l.Close()
	defer g.Close()
	var before []*Packet
	for i := range 150 {
		before = append(before, submitSimple(t, g, i))
	}

	for _, c := range []struct {
		who   Principal
		box   string
		limit int
		less  func(a, b *Packet) bool // strictly before
	}{
		{viewReviewer, "inbox", 7, func(a, b *Packet) bool {
			return a.Deadline.Before(b.Deadline) || a.Deadline.Equal(b.Deadline) && a.SubmittedSeq < b.SubmittedSeq
		}},
		{viewOrigin, "outbox", 11, func(a, b *Packet) bool { return a.SubmittedSeq < b.SubmittedSeq }},
		{viewAuditor, "all", 13, func(a, b *Packet) bool {
			return a.Submitted.Before(b.Submitted) || a.Submitted.Equal(b.Submitted) && a.SubmittedSeq < b.SubmittedSeq
		}},
	} {
		t.Run(c.box, func(t *testing.T) {
			// Writers run between the pages and during them.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					submitSimple(t, g, 1000+i)
				}
			}()
			go func() {
				defer wg.Done()
				for _, p := range before {
					select {
					case <-stop:
						return
					default:
					}
					g.Act(context.Background(), viewReviewer, nil, p.ID, "receive", "") // some are received already
				}
			}()
			got := pageAll(t, g, c.who, ListQuery{Box: c.box, Limit: c.limit}, func() { time.Sleep(2 * time.Millisecond) })
			close(stop)
			wg.Wait()
			seen := map[string]bool{}
			for i, p := range got {
				if seen[p.ID] {
					t.Fatalf("packet %s on two pages", p.ID)
				}
				seen[p.ID] = true
				if i > 0 && !c.less(got[i-1], p) {
					t.Fatalf("out of order at %d: %s (deadline %v, seq %d) after %s (deadline %v, seq %d)",
						i, p.ID, p.Deadline, p.SubmittedSeq, got[i-1].ID, got[i-1].Deadline, got[i-1].SubmittedSeq)
				}
			}
			for _, p := range before {
				if !seen[p.ID] {
					t.Fatalf("packet %s, there from the start, is on no page", p.ID)
				}
			}
			t.Logf("%s: %d packets on the pages, %d there from the start", c.box, len(got), len(before))
		})
	}

	// Filters and counts against the whole listing filtered by hand.
	fix(base.Add(15 * 24 * time.Hour))
	every := pageAll(t, g, viewAuditor, ListQuery{Box: "all", Limit: MaxLimit}, nil)
	want := map[string]int{}
	var overdue []string
	for _, p := range every {
		want[p.Status]++
		if p.Overdue {
			overdue = append(overdue, p.ID)
		}
	}
	counts, err := g.Counts(context.Background(), viewReviewer, "inbox")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range allStatuses {
		if counts[st] != int64(want[st]) {
			t.Errorf("count of %s: %d, listed %d", st, counts[st], want[st])
		}
	}
	yes := true
	var gotOverdue []string
	for _, p := range pageAll(t, g, viewReviewer, ListQuery{Box: "inbox", Overdue: &yes, Limit: 9}, nil) {
		if !p.Overdue {
			t.Errorf("packet %s listed as overdue is not", p.ID)
		}
		gotOverdue = append(gotOverdue, p.ID)
	}
	sort.Strings(overdue)
	sort.Strings(gotOverdue)
	if len(overdue) == 0 || !slices.Equal(overdue, gotOverdue) {
		t.Errorf("overdue: listed %d, want %d", len(gotOverdue), len(overdue))
	}
	received := pageAll(t, g, viewReviewer, ListQuery{Box: "inbox", Status: StatusReceived, Limit: 17}, nil)
	if len(received) != want[StatusReceived] || want[StatusReceived] == 0 {
		t.Errorf("received: listed %d, counted %d", len(received), want[StatusReceived])
	}
	for _, p := range received {
		if p.Status != StatusReceived {
			t.Errorf("status filter let %s (%s) through", p.ID, p.Status)
		}
	}
	from := base.Add(10 * 24 * time.Hour)
	for _, p := range pageAll(t, g, viewAuditor, ListQuery{Box: "all", Item: "RES-HPF-PROOF", From: from, Limit: 50}, nil) {
		if p.Submitted.Before(from) {
			t.Errorf("from filter let %s (submitted %v) through", p.ID, p.Submitted)
		}
	}
	if _, err := g.List(context.Background(), viewReviewer, ListQuery{Box: "inbox", Cursor: "!!"}); err == nil {
		t.Error("a malformed cursor was taken")
	}
	if _, err := g.List(context.Background(), viewReviewer, ListQuery{Box: "all"}); err == nil {
		t.Error("a reviewer listed all packets")
	}
}

// TestDownloadHistoryFlat: every download is recorded, but a packet's view
// carries only its latest events; the rest are paged.
func TestDownloadHistoryFlat(t *testing.T) {
	g, l := viewsGateway(t, t.TempDir(), nil)
	defer l.Close()
	defer g.Close()
	p := submitSimple(t, g, 1)
	size := func() (int, time.Duration) {
		var took []time.Duration
		var n int
		for range 21 {
			start := time.Now()
			got, err := g.Get(context.Background(), viewReviewer, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			took = append(took, time.Since(start))
			n = len(b)
		}
		slices.Sort(took)
		return n, took[len(took)/2]
	}
	download := func(n int) {
		for range n {
			rc, _, err := g.OpenMaterial(context.Background(), viewReviewer, p.ID, "applicant_id")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	}
	const downloads = 1500
	n0, t0 := size()
	download(LatestEvents)
	n20, t20 := size()
	download(downloads - LatestEvents)
	n1, t1 := size()
	t.Logf("packet view: %d bytes, %v at 0 downloads; %d bytes, %v at %d; %d bytes, %v at %d",
		n0, t0, n20, t20, LatestEvents, n1, t1, downloads)
	if n1 > n20+100 || n1 > n0+LatestEvents*200 {
		t.Errorf("view after %d downloads is %d bytes (at 0: %d, at %d: %d)", downloads, n1, n0, LatestEvents, n20)
	}
	got, err := g.Get(context.Background(), viewReviewer, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.HistoryCount != downloads+1 || len(got.History) != LatestEvents || got.HistoryCursor == "" {
		t.Fatalf("history: %d events of %d, cursor %q", len(got.History), got.HistoryCount, got.HistoryCursor)
	}
	// Walk back through the whole history.
	evs := got.History
	for cursor := got.HistoryCursor; cursor != ""; {
		page, err := g.History(context.Background(), viewReviewer, p.ID, cursor, 97)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(page.Events, evs...)
		cursor = page.NextCursor
	}
	if len(evs) != downloads+1 || evs[0].Type != EntrySubmitted {
		t.Fatalf("history walked back: %d events, first %+v", len(evs), evs[0])
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq <= evs[i-1].Seq || evs[i].Type != EntryDownloaded {
			t.Fatalf("event %d: %+v after %+v", i, evs[i], evs[i-1])
		}
	}
}

// TestRestartReplaysOnlyTheTail: views that applied every entry replay
// nothing; views behind the ledger replay what they miss, and equal a full
// rebuild.
func TestRestartReplaysOnlyTheTail(t *testing.T) {
	dir := t.TempDir()
	g, l := viewsGateway(t, dir, nil)
	for i := range 30 {
		p := submitSimple(t, g, i)
		if i%2 == 0 {
			if _, err := g.Act(context.Background(), viewReviewer, nil, p.ID, "receive", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if w, ok := g.state.watermark(); !ok || w != l.Size() {
		t.Fatalf("watermark %d %v, ledger size %d", w, ok, l.Size())
	}
	g.Close()
	l.Close()
	g, l = viewsGateway(t, dir, nil)
	if done, total := g.RecoveryProgress(); total != 0 || done != 0 {
		t.Fatalf("a restart after applying everything replayed %d of %d", done, total)
	}
	// Views as of a gateway that had applied only the first 20 entries.
	var partial bytes.Buffer
	g.state.reset()
	var recs []*ledger.Record
	l.Scan(context.Background(), 0, func(r *ledger.Record) error {
		if r.Seq < 20 {
			recs = append(recs, r)
		}
		return nil
	})
	if err := g.state.replay(recs, g.manifestNames(context.Background())); err != nil {
		t.Fatal(err)
	}
	g.Close()
	l.Close()
	g, l = viewsGateway(t, dir, nil)
	if done, total := g.RecoveryProgress(); total != l.Size()-20 || done != total {
		t.Fatalf("replayed %d of %d, want the last %d", done, total, l.Size()-20)
	}
	g.DumpViews(func(k, v []byte) { fmt.Fprintf(&partial, "%q=%q\n", k, v) })
	var full bytes.Buffer
	if err := g.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.DumpViews(func(k, v []byte) { fmt.Fprintf(&full, "%q=%q\n", k, v) })
	g.Close()
	l.Close()
	if partial.String() != full.String() {
		t.Fatalf("views after the tail replay differ from a full rebuild:\n%s\n---\n%s", partial.String(), full.String())
	}
}

// TestListFullLastPage: a page filled by the last matching packet, with
// packets the filter skips after it, offers no next page (it used to
// offer an empty one).
func TestListFullLastPage(t *testing.T) {
	g, l := viewsGateway(t, t.TempDir(), time.Now)
	defer l.Close()
	defer g.Close()
	var received []string
	for i := range 3 {
		p := submitSimple(t, g, i)
		if i < 2 {
			if _, err := g.Act(context.Background(), viewReviewer, nil, p.ID, "receive", ""); err != nil {
				t.Fatal(err)
			}
			received = append(received, p.ID)
		}
	}
	page, err := g.List(context.Background(), viewAuditor, ListQuery{Box: "all", Item: "RES-HPF-PROOF", Status: StatusReceived, Limit: 2}) // the item index holds every status
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range page.Packets {
		ids = append(ids, p.ID)
	}
	if !slices.Equal(ids, received) || page.NextCursor != "" {
		t.Fatalf("page %v with next cursor %q; want %v and no cursor", ids, page.NextCursor, received)
	}
}

// TestRebuildEqualsLiveViews: a rebuild in many small batches, their
// manifests read concurrently, leaves the views the live gateway wrote,
// file names from the manifests included.
func TestRebuildEqualsLiveViews(t *testing.T) {
	defer func(n int) { replayBatch = n }(replayBatch)
	replayBatch = 7
	g, l := viewsGateway(t, t.TempDir(), nil)
	defer l.Close()
	defer g.Close()
	for i := range 40 {
		p := submitSimple(t, g, i)
		if i%3 == 0 {
			if _, err := g.Act(context.Background(), viewReviewer, nil, p.ID, "receive", ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	dump := func() string {
		var b bytes.Buffer
		g.DumpViews(func(k, v []byte) {
			if k[0] != 'G' { // the collector's index is not rebuilt from the ledger
				fmt.Fprintf(&b, "%q=%q\n", k, v)
			}
		})
		return b.String()
	}
	live := dump()
	if err := g.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done, total := g.RecoveryProgress(); done != l.Size() || total != l.Size() {
		t.Fatalf("rebuild progress %d of %d, ledger %d", done, total, l.Size())
	}
	if got := dump(); got != live {
		t.Fatalf("rebuilt views differ from the live ones:\n%s\n---\n%s", got, live)
	}
	if !bytes.Contains([]byte(live), []byte(`a.pdf`)) {
		t.Fatal("the views lack the manifests' file names")
	}
}

// TestListReverse: a reverse listing, paged, is the forward listing
// backwards, for every box, with a status, a time range and the overdue
// filter; a forward cursor given to it is refused where it lies outside
// its range.
func TestListReverse(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now, fix := randomClock(base)
	g, l := viewsGateway(t, t.TempDir(), now)
	defer l.Close()
	defer g.Close()
	var at []time.Time // submission times
	for i := range 60 {
		p := submitSimple(t, g, i)
		if i%3 == 0 {
			if _, err := g.Act(context.Background(), viewReviewer, nil, p.ID, "receive", ""); err != nil {
				t.Fatal(err)
			}
		}
		at = append(at, p.Submitted)
	}
	mid := at[30]
	fix(base.Add(15 * 24 * time.Hour))
	yes, no := true, false
	for _, c := range []struct {
		name string
		who  Principal
		q    ListQuery
	}{
		{"inbox", viewReviewer, ListQuery{Box: "inbox"}},
		{"inbox-received", viewReviewer, ListQuery{Box: "inbox", Status: StatusReceived}},
		{"inbox-overdue", viewReviewer, ListQuery{Box: "inbox", Overdue: &yes}},
		{"inbox-not-overdue", viewReviewer, ListQuery{Box: "inbox", Overdue: &no}},
		{"outbox", viewOrigin, ListQuery{Box: "outbox"}},
		{"outbox-submitted", viewOrigin, ListQuery{Box: "outbox", Status: StatusSubmitted}},
		{"all", viewAuditor, ListQuery{Box: "all"}},
		{"all-from", viewAuditor, ListQuery{Box: "all", From: mid}},
		{"all-to", viewAuditor, ListQuery{Box: "all", To: mid}},
		{"all-range", viewAuditor, ListQuery{Box: "all", From: at[10], To: at[50]}},
		{"item", viewAuditor, ListQuery{Box: "all", Item: "RES-HPF-PROOF"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fw := c.q
			fw.Limit = MaxLimit
			forward := pageAll(t, g, c.who, fw, nil)
			rq := c.q
			rq.Reverse, rq.Limit = true, 7
			backward := pageAll(t, g, c.who, rq, nil)
			if len(forward) == 0 && c.name != "inbox-overdue" {
				t.Fatal("the forward listing is empty: the case tests nothing")
			}
			ids := func(ps []*Packet) []string {
				var out []string
				for _, p := range ps {
					out = append(out, p.ID)
				}
				return out
			}
			want := ids(forward)
			slices.Reverse(want)
			if got := ids(backward); !slices.Equal(got, want) {
				t.Fatalf("reverse listing\n%v\nwant the forward one backwards\n%v", got, want)
			}
		})
	}
	// Bounds outside the clock's range (before 1970, after 2262) bound
	// nothing, or everything, in either direction; before 1970 they used
	// to sort after every key and list nothing.
	all := len(pageAll(t, g, viewAuditor, ListQuery{Box: "all", Limit: MaxLimit}, nil))
	early, late := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		q    ListQuery
		want int
	}{
		{ListQuery{From: early}, all},
		{ListQuery{To: late}, all},
		{ListQuery{From: early, To: late}, all},
		{ListQuery{To: early}, 0},
		{ListQuery{From: late}, 0},
	} {
		for _, rev := range []bool{false, true} {
			q := c.q
			q.Box, q.Limit, q.Reverse = "all", 7, rev
			if got := len(pageAll(t, g, viewAuditor, q, nil)); got != c.want {
				t.Errorf("from %v to %v (reverse %v): %d packets, want %d", q.From, q.To, rev, got, c.want)
			}
		}
	}
	// A forward cursor past the end of a reverse range is not a cursor of it.
	first, err := g.List(context.Background(), viewAuditor, ListQuery{Box: "all", From: mid, Limit: 2})
	if err != nil || first.NextCursor == "" {
		t.Fatalf("forward page: %v, cursor %q", err, first.NextCursor)
	}
	if _, err := g.List(context.Background(), viewAuditor, ListQuery{Box: "all", To: mid, Reverse: true, Cursor: first.NextCursor}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a cursor beyond the reverse range: %v, want ErrMalformed", err)
	}
}
