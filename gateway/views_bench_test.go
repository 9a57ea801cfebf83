package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// genPackets records n packet.submitted entries straight through record
// (the materials are digests only: listings never read objects), a third
// of them received, with deadlines spread over 60 days. It is the fast
// generator for the listing benchmarks; `tongban devgen` makes whole
// packets through Submit.
func genPackets(tb testing.TB, g *Gateway, n int) {
	tb.Helper()
	base := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				id := newPacketID()
				pl := &submittedPayload{Item: "RES-HPF-PROOF", Origin: viewOrigin.Agency, Destination: viewReviewer.Agency,
					Manifest:  fmt.Sprintf("%064x", i),
					Applicant: applicantDigest{Type: "person", Digest: fmt.Sprintf("%064x", i)},
					Materials: []materialDigest{{Kind: "applicant_id", SHA256: fmt.Sprintf("%064x", i), Size: 10, ContentType: TypePDF}},
					Deadline:  base.Add(time.Duration(i%60) * 24 * time.Hour)}
				p, _, err := g.record(context.Background(), viewOrigin, nil, nil, EntrySubmitted, id, pl, nil)
				if err == nil && i%3 == 0 {
					_, _, err = g.record(context.Background(), viewReviewer, nil, p, EntryReceived, id, &receivedPayload{Manifest: p.Manifest}, nil)
				}
				if err != nil {
					failed.Store(&err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatal(*err)
	}
}

// BenchmarkInboxFirstPage: the first page (50) of a reviewer's inbox at
// 1k and at 100k packets; compare the two in the same run.
func BenchmarkInboxFirstPage(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("packets=%d", n), func(b *testing.B) {
			g, l := viewsGateway(b, b.TempDir(), nil)
			defer l.Close()
			defer g.Close()
			start := time.Now()
			genPackets(b, g, n)
			b.Logf("generated %d packets in %s", n, time.Since(start).Round(time.Millisecond))
			b.ResetTimer()
			for range b.N {
				page, err := g.List(context.Background(), viewReviewer, ListQuery{Box: "inbox"})
				if err != nil || len(page.Packets) != DefaultLimit || page.NextCursor == "" {
					b.Fatalf("%v, %d packets", err, len(page.Packets))
				}
			}
		})
	}
}

// benchSizes are the ledger sizes BenchmarkInboxFirstPage compares.
var benchSizes = []int{1_000, 100_000}

// BenchmarkRebuild: a full rebuild of the views from a ledger of 2,000
// packets (about 2,700 entries), per entry.
func BenchmarkRebuild(b *testing.B) {
	g, l := viewsGateway(b, b.TempDir(), nil)
	defer l.Close()
	defer g.Close()
	genPackets(b, g, 2000)
	b.ResetTimer()
	for range b.N {
		if err := g.Rebuild(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(l.Size()), "ns/entry")
}
