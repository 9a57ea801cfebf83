package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tongban/storage"
)

// slowStore publishes each object only after a delay, once it has read the
// stream, and fails the Put numbered failAt (from 1; 0 for none) after reading it.
type slowStore struct {
	storage.Store
	delay  time.Duration
	failAt int64
	n      atomic.Int64
	active atomic.Int64 // Puts not yet returned
	mu     sync.Mutex
	done   []string // digests whose Put returned successfully
}

func (s *slowStore) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (storage.Info, error) {
	n := s.n.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)
	b, err := io.ReadAll(r)
	if err != nil {
		return storage.Info{}, err
	}
	time.Sleep(s.delay)
	if n == s.failAt {
		return storage.Info{}, fmt.Errorf("%w: put %d refused by the test", storage.ErrUnavailable, n)
	}
	info, err := s.Store.Put(ctx, bytes.NewReader(b), opts)
	if err == nil {
		s.mu.Lock()
		s.done = append(s.done, info.SHA256)
		s.mu.Unlock()
	}
	return info, err
}

func seedSubmission(t *testing.T) []byte {
	return fuzzBody(t, fuzzPart{name: "manifest", data: []byte(seedManifest)},
		fuzzPart{name: "consent_form", filename: "consent.pdf", data: []byte(seedConsent)},
		fuzzPart{name: "applicant_id", filename: "id.pdf", data: []byte(seedID)})
}

// TestSubmitWaitsForStores: files are published in the background while
// the next part is read, yet the packet is recorded only once every
// object (files, applicant, manifest) is stored.
func TestSubmitWaitsForStores(t *testing.T) {
	g, st, l := testGateway(t)
	slow := &slowStore{Store: st, delay: 20 * time.Millisecond}
	g.cfg.Store = slow
	who := Principal{Agency: "jiashan-window", Role: RoleSubmitter}
	p, err := g.Submit(context.Background(), who, nil, partsOf(bytes.NewReader(seedSubmission(t)), fuzzBoundary))
	if err != nil {
		t.Fatal(err)
	}
	if l.Size() != 1 {
		t.Fatalf("ledger has %d entries, want 1", l.Size())
	}
	slow.mu.Lock()
	stored := append([]string(nil), slow.done...)
	slow.mu.Unlock()
	if len(stored) != 4 {
		t.Fatalf("%d objects stored when Submit returned, want 4 (2 files, applicant, manifest)", len(stored))
	}
	want := []string{p.Manifest}
	for _, m := range p.Materials {
		want = append(want, m.SHA256)
	}
	for _, d := range want {
		if _, err := st.Stat(context.Background(), d); err != nil {
			t.Errorf("object %s named by the packet: %v", d, err)
		}
	}
	if len(g.inflight) != 0 {
		t.Errorf("claims left after the request: %v", g.inflight)
	}
}

// TestSubmitStoreFailsLate: a store that fails after it has read its part
// (while the next part is being read) fails the submission with its own
// error; nothing is recorded, and every store has returned and every
// claim is released by the time Submit does.
func TestSubmitStoreFailsLate(t *testing.T) {
	for failAt := int64(1); failAt <= 4; failAt++ {
		t.Run(fmt.Sprint("put", failAt), func(t *testing.T) {
			g, st, l := testGateway(t)
			slow := &slowStore{Store: st, delay: 10 * time.Millisecond, failAt: failAt}
			g.cfg.Store = slow
			who := Principal{Agency: "jiashan-window", Role: RoleSubmitter}
			_, err := g.Submit(context.Background(), who, nil, partsOf(bytes.NewReader(seedSubmission(t)), fuzzBoundary))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if l.Size() != 0 {
				t.Fatalf("failed submission recorded: %d entries", l.Size())
			}
			if n := slow.active.Load(); n != 0 {
				t.Errorf("%d stores still running after Submit returned", n)
			}
			g.inflightMu.Lock()
			defer g.inflightMu.Unlock()
			if len(g.inflight) != 0 {
				t.Errorf("claims left after the request: %v", g.inflight)
			}
		})
	}
}
