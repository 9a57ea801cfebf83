package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"testing"
)

// TestIdempotencySurvivesCrash: a keyed submission is recorded, the
// gateway dies before it could close cleanly, and after the restart the
// key is still known, restored from the ledger entry itself.
func TestIdempotencySurvivesCrash(t *testing.T) {
	g, _, _ := testGateway(t)
	cfg := g.cfg
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	manifest, _ := json.Marshal(map[string]any{"item": "RES-HPF-PROOF", "destination": "qingpu-window",
		"applicant": map[string]string{"type": "person", "name": "张三", "id": "310118199003070016"},
		"materials": []map[string]string{{"kind": "consent_form", "filename": "a.pdf"}, {"kind": "applicant_id", "filename": "b.pdf"}}})
	w, _ := mw.CreateFormField("manifest")
	w.Write(manifest)
	for _, k := range []string{"consent_form", "applicant_id"} {
		w, _ := mw.CreateFormFile(k, map[string]string{"consent_form": "a.pdf", "applicant_id": "b.pdf"}[k])
		w.Write([]byte("%PDF-1.7\n" + k))
	}
	mw.Close()
	raw := body.Bytes()

	idem := &Idempotency{Scope: "scope-1"}
	who := Principal{Agency: "jiashan-window", Role: RoleSubmitter}
	p, err := g.Submit(context.Background(), who, idem, partsOf(bytes.NewReader(raw), mw.Boundary()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := FingerprintParts(partsOf(bytes.NewReader(raw), mw.Boundary()))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := g.Remembered("scope-1"); !ok || r.Packet != p.ID || r.Status != 201 || r.Fingerprint != want {
		t.Fatalf("remembered %+v %v; want packet %s fingerprint %s", r, ok, p.ID, want)
	}

	// Crash: the views are dropped without the clean marker.
	g.state.close()
	g2, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.state = g2.state // testGateway's cleanup closes this one
	r, ok := g2.Remembered("scope-1")
	if !ok || r.Packet != p.ID || r.Fingerprint != want {
		t.Fatalf("after the crash: %+v %v", r, ok)
	}
	if got, err := g2.Get(context.Background(), who, p.ID); err != nil || got.Status != StatusSubmitted {
		t.Fatalf("rebuilt view: %+v %v", got, err)
	}
}
