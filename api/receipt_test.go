package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	tlog "github.com/transparency-dev/formats/log"
	tproof "github.com/transparency-dev/formats/proof"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"tongban/api/apitest"
)

// TestSeedStoryReceipts: every write of the seed story (on VersityGW)
// answers with a receipt, and each is checked with transparency-dev's
// tlog-proof and checkpoint parsers and its Merkle verifier, not with the
// project's own code: the index is the entry's seq, the extra is the entry
// itself, the checkpoint is signed by the published key at seq+1, and the
// entry is included in it. GET .../receipts/{seq} gives the same bytes to
// origin, destination and auditor; nobody gets another packet's entry.
func TestSeedStoryReceipts(t *testing.T) {
	e, _ := s3Env(t)
	oa := checkOpenAPI(t, e)
	const origin, dest, audit = "jiashan-window:submitter", "qingpu-amr:reviewer", "yrd-audit:auditor"
	code, key := e.Do("GET", "/v1/ledger/key", "", nil, "")
	if code != 200 {
		t.Fatal("key", code)
	}
	logKey, err := note.NewVerifier(strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}

	type step struct {
		who, typ string
		body     []byte
	}
	var steps []step
	write := func(who, typ string, code int, body []byte, want int) {
		t.Helper()
		if code != want {
			t.Fatalf("%s: %d %s", typ, code, body)
		}
		steps = append(steps, step{who, typ, body})
	}
	m, files := apitest.CompanySetup()
	code, body := e.Submit(origin, m, files)
	write(origin, "packet.submitted", code, body, 201)
	id := decode[packetResp](t, body).ID
	act := func(who, action, reason, typ string) {
		t.Helper()
		code, body := e.JSON("POST", "/v1/packets/"+id+"/actions", who, map[string]string{"action": action, "reason": reason})
		write(who, typ, code, body, 200)
	}
	act(dest, "receive", "", "packet.received")
	act(dest, "return", "公司章程缺少股东签字页，请补正", "packet.returned")
	articles := apitest.PDF(5000)
	mp, ct := apitest.Multipart([]apitest.Part{{Name: "articles", Filename: "章程.pdf", Data: articles}})
	code, body = e.Do("POST", "/v1/packets/"+id+"/supplements", origin, mp, ct)
	write(origin, "packet.supplemented", code, body, 200)
	act(dest, "receive", "", "packet.received")
	act(dest, "approve", "准予设立登记", "packet.approved")
	mp, ct = apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: apitest.OFD()}})
	code, body = e.Do("POST", "/v1/packets/"+id+"/license", dest, mp, ct)
	write(dest, "license.issued", code, body, 200)
	act(origin, "deliver", "", "packet.delivered")

	var seqs []int64
	for _, s := range steps {
		var ans struct {
			LastSeq int64  `json:"last_seq"`
			Receipt string `json:"receipt"`
		}
		if err := json.Unmarshal(s.body, &ans); err != nil || ans.Receipt == "" {
			t.Fatalf("%s: no receipt in %s", s.typ, s.body)
		}
		var p tproof.TLogProof
		if err := p.Unmarshal([]byte(ans.Receipt)); err != nil {
			t.Fatalf("%s: transparency-dev cannot parse the receipt: %v\n%s", s.typ, err, ans.Receipt)
		}
		if int64(p.Index) != ans.LastSeq {
			t.Fatalf("%s: receipt index %d, the write appended seq %d", s.typ, p.Index, ans.LastSeq)
		}
		cp, _, _, err := tlog.ParseCheckpoint(p.Checkpoint, logKey.Name(), logKey)
		if err != nil {
			t.Fatalf("%s: checkpoint: %v", s.typ, err)
		}
		if cp.Size != p.Index+1 {
			t.Fatalf("%s: checkpoint of size %d for seq %d", s.typ, cp.Size, p.Index)
		}
		hashes := make([][]byte, len(p.Hashes))
		for i := range p.Hashes {
			hashes[i] = p.Hashes[i][:]
		}
		leaf := rfc6962.DefaultHasher.HashLeaf(p.ExtraData)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, p.Index, cp.Size, leaf, hashes, cp.Hash); err != nil {
			t.Fatalf("%s: inclusion: %v", s.typ, err)
		}
		// The extra is the entry: read with encoding/json alone.
		var ent struct {
			Seq    uint64
			Type   string
			Packet string
			Actor  struct{ Agency, Role string }
		}
		if err := json.Unmarshal(p.ExtraData, &ent); err != nil {
			t.Fatalf("%s: extra is not the entry: %v", s.typ, err)
		}
		agency, role, _ := strings.Cut(s.who, ":")
		if ent.Seq != p.Index || ent.Type != s.typ || ent.Packet != id || ent.Actor.Agency != agency || ent.Actor.Role != role {
			t.Fatalf("%s: receipt's entry says %+v", s.typ, ent)
		}
		// The same receipt again, for each party, and with the CLI's reading.
		for _, who := range []string{origin, dest, audit} {
			code, again := e.Do("GET", fmt.Sprintf("/v1/packets/%s/receipts/%d", id, p.Index), who, nil, "")
			if code != 200 || !bytes.Equal(again, []byte(ans.Receipt)) {
				t.Fatalf("%s: receipt again for %s: %d\n%s\nwas\n%s", s.typ, who, code, again, ans.Receipt)
			}
		}
		seqs = append(seqs, int64(p.Index))
	}

	// Another packet's entry is not found through this packet, and another
	// agency gets nothing.
	other := e.MustSubmit(origin, m, files)
	code, body = e.Do("GET", "/v1/packets/"+other, origin, nil, "")
	if code != 200 {
		t.Fatalf("other packet: %d %s", code, body)
	}
	otherSeq := decode[packetResp](t, body).Seq
	for _, c := range []struct {
		path, who string
		want      int
	}{
		{fmt.Sprintf("/v1/packets/%s/receipts/%d", id, otherSeq), origin, 404},
		{fmt.Sprintf("/v1/packets/%s/receipts/%d", id, otherSeq), audit, 404},
		{fmt.Sprintf("/v1/packets/%s/receipts/%d", other, seqs[0]), dest, 404},
		{fmt.Sprintf("/v1/packets/%s/receipts/%d", id, seqs[0]), "wujiang-window:reviewer", 403},
		{fmt.Sprintf("/v1/packets/%s/receipts/%d", id, 1<<40), origin, 404},
		{fmt.Sprintf("/v1/packets/%s/receipts/01", id), origin, 400},
		{fmt.Sprintf("/v1/packets/%s/receipts/-1", id), origin, 400},
		{fmt.Sprintf("/v1/packets/%s/receipts/%d?witnessed=maybe", id, seqs[0]), origin, 400},
		// This gateway has no witnesses: nothing cosigned to prove into.
		{fmt.Sprintf("/v1/packets/%s/receipts/%d?witnessed=true", id, seqs[0]), origin, 503},
	} {
		if code, body := e.Do("GET", c.path, c.who, nil, ""); code != c.want {
			t.Errorf("GET %s as %s: %d %s, want %d", c.path, c.who, code, body, c.want)
		}
	}
	oa.covered("GET /v1/packets/{id}/receipts/{seq} 200", "GET /v1/packets/{id}/receipts/{seq} 404",
		"GET /v1/packets/{id}/receipts/{seq} 403", "GET /v1/packets/{id}/receipts/{seq} 400")
}

// TestReceiptOnReplay: a retried write with the same Idempotency-Key gets
// the receipt of the entry the first attempt appended.
func TestReceiptOnReplay(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	send := func() (int, string, int64) {
		body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
		req, _ := http.NewRequest("POST", e.URL+"/v1/packets", body)
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Idempotency-Key", "jiashan-2026-0001")
		req.Header.Set("Authorization", "Bearer "+e.Tokens["jiashan-window:submitter"])
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct {
			Receipt string `json:"receipt"`
			Seq     int64  `json:"seq"`
		}
		json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans.Receipt, ans.Seq
	}
	c1, r1, s1 := send()
	c2, r2, s2 := send()
	if c1 != 201 || c2 != 201 || r1 == "" || r1 != r2 || s1 != s2 {
		t.Fatalf("first %d seq %d, replay %d seq %d; receipts equal: %v", c1, s1, c2, s2, r1 == r2)
	}
}
