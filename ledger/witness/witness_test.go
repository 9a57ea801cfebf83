package witness_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"tongban/ledger"
	"tongban/ledger/witness"
)

// testLog is a real ledger with a signed checkpoint for every size.
type testLog struct {
	l   *ledger.Ledger
	cps map[int64][]byte
	tag string // makes this log's entries differ from another's
}

func newLog(t testing.TB, origin, keyFile, tag string) *testLog {
	t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: t.TempDir(), Origin: origin, KeyFile: keyFile,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &testLog{l: l, cps: map[int64][]byte{}, tag: tag}
}

// grow appends n entries, signing a checkpoint after each.
func (g *testLog) grow(t testing.TB, n int) {
	t.Helper()
	for range n {
		_, err := g.l.Append(context.Background(), ledger.Entry{
			Type:    "packet.submitted",
			Actor:   ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
			Packet:  "pkt-" + g.tag,
			Payload: json.RawMessage(fmt.Sprintf(`{"n":%d,"tag":%q}`, g.l.Size(), g.tag)),
		})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := g.l.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		g.cps[g.l.Size()] = cp
	}
}

func (g *testLog) proof(t testing.TB, from, to int64) []ledger.Hash {
	t.Helper()
	p, err := g.l.ProveConsistency(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func openWitness(t testing.TB, dir string, logs ...string) (*witness.Witness, string) {
	t.Helper()
	w, err := witness.Open(witness.Options{Dir: dir, Name: "test.witness/" + filepath.Base(dir), Logs: logs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(func() { srv.Close(); w.Close() })
	return w, srv.URL
}

// torchwoodVerifier builds torchwood's own cosignature verifier from the
// witness's key file, to check our cosignatures with code we did not write.
func torchwoodVerifier(t testing.TB, dir string) *torchwood.CosignatureVerifier {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "witness.key"))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimSpace(string(b)), "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || raw[0] != 4 {
		t.Fatalf("witness key %q is not a cosignature/v1 key", parts[4])
	}
	s, err := torchwood.NewCosignatureSigner(parts[2], ed25519.NewKeyFromSeed(raw[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return s.Verifier()
}

func TestCosignAsTheLogGrows(t *testing.T) {
	ctx := context.Background()
	a := newLog(t, "tongban.test/a", "", "a")
	dir := t.TempDir()
	w, url := openWitness(t, dir, a.l.VerifierKey())
	tw := torchwoodVerifier(t, dir)
	if tw.String() != w.VerifierKey() {
		t.Fatalf("verifier key %q, torchwood derives %q", w.VerifierKey(), tw.String())
	}
	policy, err := witness.NewPolicy([]string{w.VerifierKey()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	var old int64
	for _, step := range []int{1, 1, 2, 5, 3, 17, 1, 32} {
		a.grow(t, step)
		size := a.l.Size()
		before := time.Now().Unix()
		cosig, err := witness.AddCheckpoint(ctx, url, old, a.proof(t, old, size), a.cps[size])
		if err != nil {
			t.Fatalf("size %d from %d: %v", size, old, err)
		}
		signed, err := witness.AppendCosignatures(a.cps[size], cosig)
		if err != nil {
			t.Fatal(err)
		}
		// torchwood checks the cosignature and reads its timestamp.
		n, err := note.Open(signed, note.VerifierList(tw))
		if err != nil {
			t.Fatalf("torchwood rejects the cosignature at size %d: %v\n%s", size, err, signed)
		}
		ts, err := torchwood.CosignatureTimestamp(n.Sigs[0])
		if err != nil || ts < before || ts > time.Now().Unix() {
			t.Fatalf("cosignature timestamp %d (%v), signed between %d and now", ts, err, before)
		}
		// The log's own signature still verifies, and so does ours.
		if _, err := ledger.OpenCheckpoint(signed, a.l.VerifierKey()); err != nil {
			t.Fatal(err)
		}
		res, err := policy.Check(signed)
		if err != nil || len(res.Valid) != 1 || res.NoLaterThan.Unix() != ts {
			t.Fatalf("policy: %+v, %v (torchwood timestamp %d)", res, err, ts)
		}
		if got, root, _ := w.Latest("tongban.test/a"); got != size || root != a.l.Head().Root {
			t.Fatalf("witness holds size %d, want %d", got, size)
		}
		old = size
	}

	// A second request for the same checkpoint is cosigned again.
	if _, err := witness.AddCheckpoint(ctx, url, old, nil, a.cps[old]); err != nil {
		t.Fatalf("same checkpoint again: %v", err)
	}
}

func TestRefusals(t *testing.T) {
	ctx := context.Background()
	a := newLog(t, "tongban.test/a", "", "a")
	keyFile := filepath.Join(t.TempDir(), "signer.key")
	fork := newLog(t, "tongban.test/a", keyFile, "fork") // same origin, different key
	other := newLog(t, "tongban.test/other", "", "other")
	dir := t.TempDir()
	_, url := openWitness(t, dir, a.l.VerifierKey(), other.l.VerifierKey())
	a.grow(t, 10)
	if _, err := witness.AddCheckpoint(ctx, url, 0, nil, a.cps[6]); err != nil {
		t.Fatal(err)
	}

	// A caller behind or ahead is told the size the witness knows.
	var behind *witness.BehindError
	for _, old := range []int64{0, 3, 7} {
		_, err := witness.AddCheckpoint(ctx, url, old, a.proof(t, old, 10), a.cps[10])
		if !errors.As(err, &behind) || behind.Size != 6 {
			t.Fatalf("old size %d: %v, want behind with size 6", old, err)
		}
	}

	// A bad proof is refused (422) and the witness does not move.
	p := a.proof(t, 6, 10)
	p[0][0] ^= 1
	if _, err := witness.AddCheckpoint(ctx, url, 6, p, a.cps[10]); !errors.Is(err, witness.ErrBadProof) {
		t.Fatalf("bad proof: %v", err)
	}
	if _, err := witness.AddCheckpoint(ctx, url, 6, a.proof(t, 5, 10), a.cps[10]); !errors.Is(err, witness.ErrBadProof) {
		t.Fatalf("proof from the wrong size: %v", err)
	}

	// A log signed with another key than the configured one: 403.
	fork.grow(t, 6)
	if _, err := witness.AddCheckpoint(ctx, url, 6, nil, fork.cps[6]); !errors.Is(err, witness.ErrBadSignature) {
		t.Fatalf("checkpoint under another key: %v", err)
	}
	// A checkpoint signed by the log's key, altered: 403.
	bad := bytes.Replace(a.cps[6], []byte("\n6\n"), []byte("\n7\n"), 1)
	if _, err := witness.AddCheckpoint(ctx, url, 6, nil, bad); !errors.Is(err, witness.ErrBadSignature) {
		t.Fatalf("altered checkpoint: %v", err)
	}

	// An unknown log: 404.
	stranger := newLog(t, "tongban.test/stranger", "", "s")
	stranger.grow(t, 1)
	if _, err := witness.AddCheckpoint(ctx, url, 0, nil, stranger.cps[1]); !errors.Is(err, witness.ErrUnknownLog) {
		t.Fatalf("unknown log: %v", err)
	}

	// Another configured log is independent.
	other.grow(t, 3)
	if _, err := witness.AddCheckpoint(ctx, url, 0, nil, other.cps[3]); err != nil {
		t.Fatalf("second log: %v", err)
	}

	// Malformed requests: 400.
	for name, body := range map[string]string{
		"no blank line":   "old 0\n" + string(a.cps[10]),
		"old > size":      "old 11\n\n" + string(a.cps[10]),
		"leading zero":    "old 06\n\n" + string(a.cps[10]),
		"proof from zero": "old 0\n" + a.proof(t, 6, 10)[0].String() + "\n\n" + string(a.cps[10]),
		"bad proof line":  "old 6\nnot-a-hash\n\n" + string(a.cps[10]),
		"not a note":      "old 6\n\ntongban.test/a\n10\n",
	} {
		resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, resp.StatusCode)
		}
	}
	if resp, err := http.Get(url + "/add-checkpoint"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp.StatusCode, err)
	}

	// Still at 6, and consistent growth goes on.
	if _, err := witness.AddCheckpoint(ctx, url, 6, a.proof(t, 6, 10), a.cps[10]); err != nil {
		t.Fatal(err)
	}
}

// A fork: a second history of the same log under the same key.
func TestForkRefused(t *testing.T) {
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "signer.key")
	a := newLog(t, "tongban.test/a", keyFile, "a")
	b := newLog(t, "tongban.test/a", keyFile, "b")
	dir := t.TempDir()
	_, url := openWitness(t, dir, a.l.VerifierKey())
	a.grow(t, 8)
	b.grow(t, 12)
	if _, err := witness.AddCheckpoint(ctx, url, 0, nil, a.cps[8]); err != nil {
		t.Fatal(err)
	}
	// Same size, different root: 409 at the size sent.
	if _, err := witness.AddCheckpoint(ctx, url, 8, nil, b.cps[8]); !errors.Is(err, witness.ErrFork) {
		t.Fatalf("fork at the same size: %v", err)
	}
	// Larger, with the fork's own proof: 422.
	if _, err := witness.AddCheckpoint(ctx, url, 8, b.proof(t, 8, 12), b.cps[12]); !errors.Is(err, witness.ErrBadProof) {
		t.Fatalf("fork grown: %v", err)
	}
	// Both refused checkpoints are kept as evidence.
	ev, err := os.ReadDir(filepath.Join(dir, "evidence"))
	if err != nil || len(ev) != 2 {
		t.Fatalf("evidence: %v, %v", ev, err)
	}
	for _, e := range ev {
		got, _ := os.ReadFile(filepath.Join(dir, "evidence", e.Name()))
		if !bytes.Equal(got, b.cps[8]) && !bytes.Equal(got, b.cps[12]) {
			t.Fatalf("evidence %s is not a refused checkpoint:\n%s", e.Name(), got)
		}
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	a := newLog(t, "tongban.test/a", "", "a")
	a.grow(t, 9)
	dir := t.TempDir()
	w, err := witness.Open(witness.Options{Dir: dir, Logs: []string{a.l.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	vkey := w.VerifierKey()
	if !strings.HasPrefix(vkey, "tongban-witness-") {
		t.Fatalf("default key name: %s", vkey)
	}
	if _, err := witness.Open(witness.Options{Dir: dir, Logs: []string{a.l.VerifierKey()}}); !errors.Is(err, witness.ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
	if _, err := w.AddCheckpoint(0, nil, a.cps[4]); err != nil {
		t.Fatal(err)
	}
	w.Close()

	w, err = witness.Open(witness.Options{Dir: dir, Logs: []string{a.l.VerifierKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if w.VerifierKey() != vkey {
		t.Fatal("key changed across restart")
	}
	if size, root, ok := w.Latest("tongban.test/a"); !ok || size != 4 {
		t.Fatalf("after restart: size %d root %v", size, root)
	}
	var behind *witness.BehindError
	if _, err := w.AddCheckpoint(0, nil, a.cps[9]); !errors.As(err, &behind) || behind.Size != 4 {
		t.Fatalf("after restart: %v", err)
	}
	w.Close()

	// A witness whose record of what it cosigned is gone refuses to run.
	if err := os.Remove(filepath.Join(dir, "state.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := witness.Open(witness.Options{Dir: dir, Logs: []string{a.l.VerifierKey()}}); err == nil || !strings.Contains(err.Error(), "no state.json") {
		t.Fatalf("Open without state: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	a := newLog(t, "tongban.test/a", "", "a")
	a.grow(t, 3)
	var ws []*witness.Witness
	var keys []string
	for i := range 3 {
		w, err := witness.Open(witness.Options{Dir: t.TempDir(), Name: fmt.Sprintf("w%d.test", i), Logs: []string{a.l.VerifierKey()},
			Now: func() time.Time { return time.Unix(int64(1_800_000_000+100*i), 0) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		ws, keys = append(ws, w), append(keys, w.VerifierKey())
	}
	cosig := func(i int) []byte {
		c, err := ws[i].AddCheckpoint(0, nil, a.cps[3])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c0, c1, c2 := cosig(0), cosig(1), cosig(2)
	p, err := witness.NewPolicy(append(keys, keys[0]), 2) // a key twice counts once
	if err != nil || p.Witnesses() != 3 {
		t.Fatal(p, err)
	}

	one, _ := witness.AppendCosignatures(a.cps[3], c2, c2) // the same line twice counts once
	res, err := p.Check(one)
	if !errors.Is(err, witness.ErrQuorum) || len(res.Valid) != 1 || !res.NoLaterThan.IsZero() {
		t.Fatalf("one cosignature: %+v %v", res, err)
	}
	// An altered cosignature does not count.
	name, b64, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(c0)), "— "), " ")
	raw, _ := base64.StdEncoding.DecodeString(b64)
	raw[len(raw)-1] ^= 1
	altered := fmt.Appendf(nil, "— %s %s\n", name, base64.StdEncoding.EncodeToString(raw))
	forged, err := witness.AppendCosignatures(a.cps[3], c2, altered)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Check(forged); !errors.Is(err, witness.ErrQuorum) {
		t.Fatalf("altered cosignature counted: %v", err)
	}
	all, _ := witness.AppendCosignatures(a.cps[3], c2, c0, c1)
	res, err = p.Check(all)
	if err != nil || len(res.Valid) != 3 {
		t.Fatalf("three cosignatures: %+v %v", res, err)
	}
	if got := res.NoLaterThan.Unix(); got != 1_800_000_100 {
		t.Fatalf("no later than %d, want the second earliest cosignature 1800000100", got)
	}
	if res.Valid[0].Name != "w0.test" || res.Valid[0].Key != keys[0] {
		t.Fatalf("earliest: %+v", res.Valid[0])
	}
	if _, err := witness.NewPolicy(keys, 4); err == nil {
		t.Fatal("quorum above the witnesses accepted")
	}
	if _, err := witness.NewPolicy([]string{a.l.VerifierKey()}, 1); err == nil {
		t.Fatal("a log's Ed25519 note key accepted as a witness key")
	}
}

func TestCosignCatchesUp(t *testing.T) {
	ctx := context.Background()
	a := newLog(t, "tongban.test/a", "", "a")
	_, url := openWitness(t, t.TempDir(), a.l.VerifierKey())
	a.grow(t, 30)
	prove := func(from, to int64) ([]ledger.Hash, error) { return a.l.ProveConsistency(from, to) }
	c := &witness.Client{HTTP: &http.Client{Timeout: 10 * time.Second}}
	if _, err := c.Cosign(ctx, url, 0, 7, a.cps[7], prove); err != nil {
		t.Fatal(err)
	}
	// The caller believes 3 (say, it restarted); the witness holds 7.
	if _, err := c.Cosign(ctx, url, 3, 20, a.cps[20], prove); err != nil {
		t.Fatalf("catch up from a wrong belief: %v", err)
	}
	// The caller believes 25 (say, the witness lost an answer); it holds 20.
	if _, err := c.Cosign(ctx, url, 25, 30, a.cps[30], prove); err != nil {
		t.Fatalf("catch up from a belief ahead: %v", err)
	}
	// A checkpoint older than what the witness holds: behind, with its size.
	var behind *witness.BehindError
	if _, err := c.Cosign(ctx, url, 0, 12, a.cps[12], prove); !errors.As(err, &behind) || behind.Size != 30 {
		t.Fatalf("older checkpoint: %v", err)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("old 0\n\ntongban.test/a\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAA\n"))
	f.Add([]byte("old 12\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nx\n"))
	f.Add([]byte("old 01\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		old, proof, signed, err := witness.ParseRequest(body)
		if err != nil {
			if !errors.Is(err, witness.ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if again := witness.FormatRequest(old, proof, signed); !bytes.Equal(again, body) {
			t.Fatalf("round trip:\n%q\n%q", body, again)
		}
		p, _ := witness.NewPolicy(nil, 0)
		p.Check(signed) // must not panic
	})
}

func TestCosignBeliefBeyondCheckpoint(t *testing.T) {
	ctx := context.Background()
	a := newLog(t, "tongban.test/a", "", "a")
	_, url := openWitness(t, t.TempDir(), a.l.VerifierKey())
	a.grow(t, 9)
	prove := func(from, to int64) ([]ledger.Hash, error) { return a.l.ProveConsistency(from, to) }
	c := &witness.Client{}
	if _, err := c.Cosign(ctx, url, 0, 4, a.cps[4], prove); err != nil {
		t.Fatal(err)
	}
	// A caller believing 8 sends a checkpoint of 6: it asks from 0 first.
	if _, err := c.Cosign(ctx, url, 8, 6, a.cps[6], prove); err != nil {
		t.Fatalf("belief beyond the checkpoint: %v", err)
	}
	var behind *witness.BehindError
	if _, err := witness.AddCheckpoint(ctx, url, 0, nil, a.cps[1]); !errors.As(err, &behind) || behind.Size != 6 {
		t.Fatalf("witness holds %v, want 6", err)
	}
}
