package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"tongban/api/apitest"
	"tongban/gateway"
)

// post sends a body with an Idempotency-Key and returns status, body and
// whether the answer was a replay.
func post(t *testing.T, e *apitest.Env, path, who, key string, body []byte, ct string) (int, []byte, bool) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+e.Tokens[who])
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("Idempotency-Replayed") == "true"
}

func idOf(t *testing.T, b []byte) string {
	var p struct{ ID string }
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		t.Fatalf("no id in %s", b)
	}
	return p.ID
}

func TestIdempotentSubmit(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	const who = "jiashan-window:submitter"
	m, files := apitest.CompanySetup()
	first, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	code, body, replayed := post(t, e, "/v1/packets", who, "key-1", first.Bytes(), ct)
	if code != 201 || replayed {
		t.Fatalf("first: %d %s", code, body)
	}
	id, size := idOf(t, body), e.Ledger.Size()

	// The retry is encoded afresh, with another boundary: same request.
	again, ct2 := apitest.Multipart(apitest.SubmissionParts(m, files))
	code, body, replayed = post(t, e, "/v1/packets", who, "key-1", again.Bytes(), ct2)
	if code != 201 || !replayed || idOf(t, body) != id {
		t.Fatalf("retry: %d replayed=%v %s", code, replayed, body)
	}
	if e.Ledger.Size() != size {
		t.Fatalf("the retry appended %d entries", e.Ledger.Size()-size)
	}

	// Same key, different request: refused, nothing recorded.
	files[0].Data = apitest.PDF(999)
	m.Materials[0].SHA256 = apitest.SHA256(files[0].Data)
	other, ct3 := apitest.Multipart(apitest.SubmissionParts(m, files))
	code, body, _ = post(t, e, "/v1/packets", who, "key-1", other.Bytes(), ct3)
	if code != 422 || e.Ledger.Size() != size {
		t.Fatalf("same key, other body: %d %s (ledger +%d)", code, body, e.Ledger.Size()-size)
	}

	// The key is the submitter's own: another principal may use the same string.
	code, body, replayed = post(t, e, "/v1/packets", "wujiang-window:submitter", "key-1", other.Bytes(), ct3)
	if code != 201 || replayed || idOf(t, body) == id {
		t.Fatalf("another principal's key: %d replayed=%v", code, replayed)
	}
}

// TestIdempotentRetryRacesOriginal sends the same keyed request eight times
// at once: one packet, one entry, eight identical answers.
func TestIdempotentRetryRacesOriginal(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	size := e.Ledger.Size()
	var wg sync.WaitGroup
	ids := make([]string, 8)
	codes := make([]int, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
			var b []byte
			codes[i], b, _ = post(t, e, "/v1/packets", "jiashan-window:submitter", "race", body.Bytes(), ct)
			var p struct{ ID string }
			json.Unmarshal(b, &p)
			ids[i] = p.ID
		}()
	}
	wg.Wait()
	for i := range ids {
		if codes[i] != 201 || ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("answers %v, ids %v", codes, ids)
		}
	}
	if got := e.Ledger.Size() - size; got != 1 {
		t.Fatalf("%d entries for one keyed request", got)
	}
}

func TestIdempotentActions(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	const dest = "qingpu-amr:reviewer"
	path := "/v1/packets/" + id + "/actions"
	code, body, _ := post(t, e, path, dest, "recv-1", []byte(`{"action":"receive"}`), "application/json")
	if code != 200 {
		t.Fatalf("receive: %d %s", code, body)
	}
	size := e.Ledger.Size()
	// A retry spelled differently but meaning the same is a replay, not a 409.
	code, body, replayed := post(t, e, path, dest, "recv-1", []byte("{ \"action\" : \"receive\" }"), "application/json")
	if code != 200 || !replayed || e.Ledger.Size() != size {
		t.Fatalf("retried receive: %d replayed=%v %s", code, replayed, body)
	}
	code, _, _ = post(t, e, path, dest, "recv-1", []byte(`{"action":"approve"}`), "application/json")
	if code != 422 || e.Ledger.Size() != size {
		t.Fatalf("key reused for another action: %d", code)
	}
	// Without a key a second receive is the usual conflict.
	if code, _, _ = post(t, e, path, dest, "", []byte(`{"action":"receive"}`), "application/json"); code != 409 {
		t.Fatalf("unkeyed second receive: %d", code)
	}
}

// TestIdempotentLicense: a licence upload retried with the same key is
// replayed, and the packet has one licence entry; the key with another
// file is refused.
func TestIdempotentLicense(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	const dest = "qingpu-amr:reviewer"
	e.Act(dest, id, "receive", "", 200)
	e.Act(dest, id, "approve", "材料齐全", 200)
	path := "/v1/packets/" + id + "/license"
	licence := apitest.OFD()
	upload := func(key string, data []byte) (int, []byte, bool) {
		body, ct := apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: data}})
		return post(t, e, path, dest, key, body.Bytes(), ct)
	}
	code, first, replayed := upload("lic-1", licence)
	if code != 200 || replayed {
		t.Fatalf("licence: %d %s", code, first)
	}
	size := e.Ledger.Size()
	code, again, replayed := upload("lic-1", licence) // encoded afresh: another boundary
	if code != 200 || !replayed || e.Ledger.Size() != size {
		t.Fatalf("retried licence: %d replayed=%v (ledger +%d) %s", code, replayed, e.Ledger.Size()-size, again)
	}
	var p1, p2 gateway.Packet
	json.Unmarshal(first, &p1)
	json.Unmarshal(again, &p2)
	if p1.License == nil || p2.License == nil || p1.License.SHA256 != p2.License.SHA256 || p1.LastSeq != p2.LastSeq {
		t.Fatalf("the replay differs from the original: %+v / %+v", p1.License, p2.License)
	}
	if code, body, _ := upload("lic-1", apitest.PDF(1500)); code != 422 || e.Ledger.Size() != size {
		t.Fatalf("key reused for another file: %d %s", code, body)
	}
	// Without a key, a second licence is the usual conflict.
	if code, body, _ := upload("", licence); code != 409 || e.Ledger.Size() != size {
		t.Fatalf("unkeyed second licence: %d %s", code, body)
	}
	code, body := e.Do("GET", "/v1/packets/"+id+"/history", dest, nil, "")
	var h gateway.HistoryPage
	if code != 200 || json.Unmarshal(body, &h) != nil {
		t.Fatalf("history: %d %s", code, body)
	}
	n := 0
	for _, ev := range h.Events {
		if ev.Type == gateway.EntryLicense {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d licence entries, want 1: %+v", n, h.Events)
	}
}
