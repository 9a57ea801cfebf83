package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/ledger"
)

// appendN appends n entries concurrently (so they group-commit).
func appendN(t *testing.T, l *ledger.Ledger, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := l.Append(context.Background(), ledger.Entry{Type: "test.tile", Actor: ledger.Actor{Agency: "qingpu-amr", Role: "reviewer"},
				Packet: fmt.Sprintf("P%06d", i), Payload: []byte(fmt.Sprintf(`{"i":%d}`, i))})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// authTransport adds a bearer token to every request.
type authTransport struct {
	token string
	base  http.RoundTripper
}

func (a authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if a.token != "" {
		r.Header.Set("Authorization", "Bearer "+a.token)
	}
	return a.base.RoundTrip(r)
}

// followWithTorchwood reads the whole log through the tiles API with
// torchwood's client, an implementation the project did not write, and
// checks every entry and the root against the ledger.
func followWithTorchwood(t *testing.T, e *apitest.Env, token string) {
	t.Helper()
	ctx := context.Background()
	hc := &http.Client{Transport: authTransport{token, e.Client.Transport}}
	tf, err := torchwood.NewTileFetcher(e.URL+"/v1/ledger/tlog/", torchwood.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := tf.ReadEndpoint(ctx, "checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(e.Ledger.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		t.Fatal(err)
	}
	if cp.N != e.Ledger.Size() {
		t.Fatalf("checkpoint size %d, ledger %d", cp.N, e.Ledger.Size())
	}
	client, err := torchwood.NewClient(tf)
	if err != nil {
		t.Fatal(err)
	}
	// The root, recomputed by tlog from the hash tiles alone.
	root, err := tlog.TreeHash(cp.N, torchwood.TileHashReaderWithContext(ctx, cp.Tree, tf))
	if err != nil {
		t.Fatal(err)
	}
	if want := e.Ledger.Head().Root; root != want || cp.Hash != want {
		t.Fatalf("root from tiles %s, checkpoint %s, ledger %s", root, cp.Hash, want)
	}
	// Entries may stop before a partial data tile; resuming reads it.
	next := int64(0)
	for try := 0; next < cp.N && try < 3; try++ {
		for i, entry := range client.Entries(ctx, cp.Tree, next) {
			if i != next {
				t.Fatalf("entry %d after %d", i, next-1)
			}
			rec, err := e.Ledger.Get(i)
			if err != nil {
				t.Fatal(err)
			}
			if string(entry) != string(rec.Raw) {
				t.Fatalf("entry %d: tiles %q, ledger %q", i, entry, rec.Raw)
			}
			next++
		}
		if err := client.Err(); err != nil {
			t.Fatalf("after %d entries: %v", next, err)
		}
	}
	if next != cp.N {
		t.Fatalf("torchwood followed %d of %d entries", next, cp.N)
	}
}

func TestTilesFollowedByTorchwood(t *testing.T) {
	mirrorTok, mirrorSum := api.NewToken()
	e := apitest.New(t, apitest.Options{Credentials: []api.Credential{{Agency: "wujiang-mirror", Role: api.RoleMirror, TokenSHA256: mirrorSum}}})
	// Two full data tiles and a partial one; level-1 tiles stay partial.
	appendN(t, e.Ledger, 2*256+77)
	followWithTorchwood(t, e, mirrorTok)
	// Every agency principal may read it too.
	followWithTorchwood(t, e, e.Tokens["jiashan-window:submitter"])

	// The log grows: a partial tile becomes full, and torchwood follows again.
	appendN(t, e.Ledger, 256)
	followWithTorchwood(t, e, mirrorTok)

	// A mirror may read the tiles and nothing else.
	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := get("/v1/ledger/entries/0", mirrorTok); r.StatusCode != http.StatusForbidden {
		t.Errorf("mirror reading an entry: %d, want 403", r.StatusCode)
	}
	if r := get("/v1/packets?box=inbox", mirrorTok); r.StatusCode/100 == 2 {
		t.Errorf("mirror listing packets: %d", r.StatusCode)
	}
	if r := get("/v1/ledger/tlog/tile/0/000", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous tile: %d, want 401 (tiles are not public by default)", r.StatusCode)
	}
}

func TestTileHeadersAndBounds(t *testing.T) {
	e := apitest.New(t, apitest.Options{API: func(c *api.Config) { c.PublicTiles = true }})
	appendN(t, e.Ledger, 300)
	cases := []struct {
		path   string
		status int
		cache  string
	}{
		{"/v1/ledger/tlog/tile/0/000", 200, "public, max-age=31536000, immutable"},
		{"/v1/ledger/tlog/tile/entries/000", 200, "public, max-age=31536000, immutable"},
		{"/v1/ledger/tlog/tile/0/001.p/44", 200, "public, max-age=5"},
		{"/v1/ledger/tlog/tile/entries/001.p/44", 200, "public, max-age=5"},
		{"/v1/ledger/tlog/tile/1/000.p/1", 200, "public, max-age=5"},
		{"/v1/ledger/tlog/checkpoint", 200, "public, max-age=5"},
		{"/v1/ledger/tlog/tile/0/001", 404, ""},           // not full yet
		{"/v1/ledger/tlog/tile/0/001.p/45", 404, ""},      // beyond the tree
		{"/v1/ledger/tlog/tile/entries/002.p/1", 404, ""}, // beyond the tree
		{"/v1/ledger/tlog/tile/1/000.p/2", 404, ""},
		{"/v1/ledger/tlog/tile/0/000.p/256", 404, ""}, // a full tile has one name
		{"/v1/ledger/tlog/tile/0/0", 404, ""},
		{"/v1/ledger/tlog/tile/0/x000/000", 404, ""},
		{"/v1/ledger/tlog/tile/9/000", 404, ""},
		{"/v1/ledger/tlog/tile/-1/000", 404, ""},
		{"/v1/ledger/tlog/tile/0/000.p/0", 404, ""},
		{"/v1/ledger/tlog/tile/data/000", 404, ""},
	}
	for _, c := range cases {
		resp, err := http.Get(e.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: %d %s, want %d", c.path, resp.StatusCode, body, c.status)
			continue
		}
		if got := resp.Header.Get("Cache-Control"); c.cache != "" && got != c.cache {
			t.Errorf("%s: Cache-Control %q, want %q", c.path, got, c.cache)
		}
	}
	// A hash tile holds the stored hashes: its first is leaf 0's hash.
	resp, err := http.Get(e.URL + "/v1/ledger/tlog/tile/0/000")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rec, err := e.Ledger.Get(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 256*32 || string(data[:32]) != string(rec.Hash[:]) {
		t.Fatalf("tile 0/000: %d bytes, first hash %x, want leaf hash %x", len(data), data[:min(32, len(data))], rec.Hash)
	}
}
