package api_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/gateway"
)

// The load test's shape.
const (
	loadClients     = 64        // half submit, half review
	loadMaxRequests = 1_000_000 // hard cap, whatever the duration
	loadFileSize    = 20 << 10
)

// loadDuration is how long TestLoad sends requests: 60 s, or
// TONGBAN_LOAD_SECONDS seconds if that is set (e.g. TONGBAN_LOAD_SECONDS=5
// for a quick run, 600 for a soak).
func loadDuration(t *testing.T) time.Duration {
	v := os.Getenv("TONGBAN_LOAD_SECONDS")
	if v == "" {
		return 60 * time.Second
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("TONGBAN_LOAD_SECONDS=%q: want a positive number of seconds", v)
	}
	return time.Duration(n) * time.Second
}

// Request kinds measured.
const (
	kSubmit = iota
	kList
	kGet
	kReceive
	kReturn
	kApprove
	kMaterial
	kBundle
	kKinds
)

var loadKindNames = [kKinds]string{"submit", "list", "get", "receive", "return", "approve", "material", "bundle"}

// loadSample is one request: its kind, status (0: no answer) and latency.
type loadSample struct {
	kind uint8
	code int16
	took time.Duration
}

// loadAck is one acknowledged write: the ledger entry it must have appended.
type loadAck struct {
	packet, typ string
}

// loadClient is one of the concurrent clients, with what it saw.
type loadClient struct {
	e        *apitest.Env
	http     *http.Client
	who      string // "agency:role"
	token    string
	rng      *rand.Rand
	deadline time.Time
	budget   *atomic.Int64 // requests left under the hard cap
	samples  []loadSample
	acks     []loadAck
	failures []string // transport errors, 5xx, unexpected statuses (first few)
	nfail    int
}

func (c *loadClient) more() bool {
	return time.Now().Before(c.deadline) && c.budget.Add(-1) >= 0
}

func (c *loadClient) fail(format string, args ...any) {
	c.nfail++
	if len(c.failures) < 5 {
		c.failures = append(c.failures, c.who+": "+fmt.Sprintf(format, args...))
	}
}

// do sends one request and records it. It returns status, body and headers.
func (c *loadClient) do(kind uint8, method, path string, body io.Reader, ct string) (int, []byte, http.Header) {
	req, err := http.NewRequest(method, c.e.URL+path, body)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	took := time.Since(start)
	if err != nil {
		c.samples = append(c.samples, loadSample{kind, 0, took})
		c.fail("%s %s: %v", method, path, err)
		return 0, nil, nil
	}
	c.samples = append(c.samples, loadSample{kind, int16(resp.StatusCode), took})
	if resp.StatusCode >= 500 {
		c.fail("%s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, b, resp.Header
}

// loadDestinations are the agencies whose reviewers take part, and the
// items each accepts from a window.
var loadDestinations = []string{"qingpu-amr", "qingpu-window", "wujiang-window", "jiashan-window"}

func (c *loadClient) file(kind, name string, jpeg bool) apitest.File {
	b := make([]byte, loadFileSize)
	for i := 0; i+8 <= len(b); i += 8 {
		v := c.rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	if jpeg {
		copy(b, []byte{0xFF, 0xD8, 0xFF, 0xE0})
	} else {
		copy(b, "%PDF-1.7\n")
	}
	return apitest.File{Kind: kind, Filename: name, Data: b}
}

// submitOne sends a small valid packet from the client's window to another
// agency: RES-HPF-PROOF (4 x 20 KiB) to a window, or ENT-SETUP (5 x 20 KiB
// and an OFD) to Qingpu's market-regulation bureau or a window.
func (c *loadClient) submitOne() {
	origin, _, _ := strings.Cut(c.who, ":")
	var dests []string
	for _, d := range loadDestinations {
		if d != origin {
			dests = append(dests, d)
		}
	}
	dest := dests[c.rng.IntN(len(dests))]
	var m apitest.Manifest
	var files []apitest.File
	if dest == "qingpu-amr" || c.rng.IntN(4) == 0 {
		m = apitest.Manifest{Item: "ENT-SETUP", Destination: dest,
			Applicant: map[string]any{"type": "enterprise", "name": "上海青嘉贸易有限公司", "id": "91310118MA1G00011T"}}
		files = []apitest.File{
			c.file("consent_form", "同意书.pdf", false), c.file("application_form", "申请书.pdf", false),
			c.file("applicant_id", "营业执照副本.jpg", true), c.file("address_proof", "住所证明.pdf", false),
			{Kind: "articles", Filename: "章程.ofd", Data: apitest.OFD()}, c.file("appointments", "任职文件.pdf", false),
		}
	} else {
		m = apitest.Manifest{Item: "RES-HPF-PROOF", Destination: dest,
			Applicant: map[string]any{"type": "person", "name": "张三", "id": "11010519491231002X"}}
		files = []apitest.File{
			c.file("consent_form", "同意书.pdf", false), c.file("applicant_id", "身份证.jpg", true),
			c.file("power_of_attorney", "委托书.pdf", false), c.file("agent_id", "代理人身份证.jpg", true),
		}
	}
	for _, f := range files {
		m.Materials = append(m.Materials, apitest.MaterialSpec{Kind: f.Kind, Filename: f.Filename, SHA256: apitest.SHA256(f.Data)})
	}
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	code, b, _ := c.do(kSubmit, "POST", "/v1/packets", body, ct)
	if code != http.StatusCreated {
		if code != 0 && code < 500 {
			c.fail("submit: %d %.200s", code, b)
		}
		return
	}
	var p struct{ ID, Status string }
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" || p.Status != gateway.StatusSubmitted {
		c.fail("submit answered %.200s", b)
		return
	}
	c.acks = append(c.acks, loadAck{p.ID, gateway.EntrySubmitted})
}

// act performs an action; a 409 means another reviewer was first.
func (c *loadClient) act(kind uint8, id, action, reason string) bool {
	b, _ := json.Marshal(map[string]string{"action": action, "reason": reason})
	code, body, _ := c.do(kind, "POST", "/v1/packets/"+id+"/actions", bytes.NewReader(b), "application/json")
	switch code {
	case http.StatusOK:
		typ := map[string]string{"receive": gateway.EntryReceived, "return": gateway.EntryReturned, "approve": gateway.EntryApproved}[action]
		c.acks = append(c.acks, loadAck{id, typ})
		return true
	case http.StatusConflict, 0:
	default:
		if code < 500 {
			c.fail("%s %s: %d %.200s", action, id, code, body)
		}
	}
	return false
}

// download fetches one material (checking its digest) or the bundle.
func (c *loadClient) download(id string, materials []string) {
	if c.rng.IntN(3) == 0 {
		code, b, _ := c.do(kBundle, "GET", "/v1/packets/"+id+"/bundle", nil, "")
		if code != http.StatusOK {
			if code != 0 && code < 500 {
				c.fail("bundle %s: %d %.200s", id, code, b)
			}
			return
		}
		c.acks = append(c.acks, loadAck{id, gateway.EntryDownloaded})
		if _, err := zip.NewReader(bytes.NewReader(b), int64(len(b))); err != nil {
			c.fail("bundle %s: %v", id, err)
		}
		return
	}
	kind := materials[c.rng.IntN(len(materials))]
	code, b, h := c.do(kMaterial, "GET", "/v1/packets/"+id+"/materials/"+kind, nil, "")
	if code != http.StatusOK {
		if code != 0 && code < 500 {
			c.fail("material %s/%s: %d %.200s", id, kind, code, b)
		}
		return
	}
	c.acks = append(c.acks, loadAck{id, gateway.EntryDownloaded})
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != h.Get("X-Content-SHA256") {
		c.fail("material %s/%s: the bytes do not match X-Content-SHA256", id, kind)
	}
}

type loadPacket struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Materials []struct {
		Kind string `json:"kind"`
	} `json:"materials"`
}

// reviewOne lists the inbox (packets to receive, else received ones
// another reviewer left) and works on up to three of them: receive,
// download a material or the bundle, then approve or return. Reviewers of
// the same agency race for the same packets; the losers get 409.
func (c *loadClient) reviewOne() {
	var list []loadPacket
	for _, status := range []string{gateway.StatusSubmitted, gateway.StatusReceived} {
		code, b, _ := c.do(kList, "GET", "/v1/packets?box=inbox&status="+status, nil, "")
		if code != http.StatusOK {
			if code != 0 && code < 500 {
				c.fail("list: %d %.200s", code, b)
			}
			return
		}
		var v struct{ Packets []loadPacket }
		if err := json.Unmarshal(b, &v); err != nil {
			c.fail("list: %v", err)
			return
		}
		if list = v.Packets; len(list) > 0 {
			break
		}
	}
	if len(list) == 0 {
		time.Sleep(20 * time.Millisecond)
		return
	}
	for range min(3, len(list)) {
		if !c.more() {
			return
		}
		p := list[c.rng.IntN(len(list))]
		if p.Status == gateway.StatusSubmitted && !c.act(kReceive, p.ID, "receive", "") {
			continue
		}
		if c.rng.IntN(8) == 0 {
			c.do(kGet, "GET", "/v1/packets/"+p.ID, nil, "")
		}
		var kinds []string
		for _, m := range p.Materials {
			kinds = append(kinds, m.Kind)
		}
		c.download(p.ID, kinds)
		if c.rng.IntN(3) == 0 {
			c.act(kReturn, p.ID, "return", "材料不全，请补正")
		} else {
			c.act(kApprove, p.ID, "approve", "")
		}
	}
}

// TestLoad runs 64 concurrent clients over loopback HTTP against one
// gateway with a filesystem store, for loadDuration (60 s by default; set
// TONGBAN_LOAD_SECONDS to change it) and at most loadMaxRequests requests:
// the three windows submit small packets, the reviewers of four agencies
// list, receive, download and approve or return them. Afterwards: no 5xx
// and no transport error; every acknowledged submission is exactly one
// packet; every acknowledged write (submission, action, download) is
// exactly one ledger entry of its packet and the ledger grew by exactly
// their number; each packet's status follows from its acknowledged
// actions; the ledger verifies. Throughput and latencies are logged.
func TestLoad(t *testing.T) {
	dur := loadDuration(t)
	e := apitest.New(t, apitest.Options{}) // no rate limit; idle timeout 1 min
	tr := e.Client.Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = loadClients // default 2 would churn connections
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}

	submitters := []string{"jiashan-window:submitter", "wujiang-window:submitter", "qingpu-window:submitter"}
	size0 := e.Ledger.Size()
	var budget atomic.Int64
	budget.Store(loadMaxRequests)
	start := time.Now()
	clients := make([]*loadClient, loadClients)
	var wg sync.WaitGroup
	for i := range clients {
		who := submitters[(i/2)%len(submitters)]
		if i%2 == 1 {
			who = loadDestinations[(i/2)%len(loadDestinations)] + ":reviewer"
		}
		c := &loadClient{e: e, http: client, who: who, token: e.Tokens[who], budget: &budget,
			rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))), deadline: start.Add(dur)}
		clients[i] = c
		wg.Go(func() {
			for c.more() {
				if strings.HasSuffix(c.who, ":submitter") {
					c.submitOne()
				} else {
					c.reviewOne()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	// What the clients saw.
	var samples []loadSample
	want := map[string]map[string]int{} // packet -> entry type -> acknowledged writes
	acked := 0
	nfail := 0
	var submitted []string
	for _, c := range clients {
		samples = append(samples, c.samples...)
		for _, a := range c.acks {
			if want[a.packet] == nil {
				want[a.packet] = map[string]int{}
			}
			want[a.packet][a.typ]++
			acked++
			if a.typ == gateway.EntrySubmitted {
				submitted = append(submitted, a.packet)
			}
		}
		nfail += c.nfail
		for _, f := range c.failures {
			t.Error(f)
		}
	}
	if nfail > 0 {
		t.Errorf("%d failed requests (transport errors, 5xx or unexpected statuses)", nfail)
	}
	loadReport(t, samples, elapsed, len(submitted))
	if len(submitted) == 0 {
		t.Fatal("nothing was submitted")
	}

	// Every acknowledged write is one entry: the ledger grew by their number.
	if got := e.Ledger.Size() - size0; got != int64(acked) {
		t.Errorf("the ledger grew by %d entries; %d writes were acknowledged", got, acked)
	}
	auditor := &loadClient{e: e, http: client, who: azAuditor, token: e.Tokens[azAuditor]}
	code, cp, _ := auditor.do(kGet, "GET", "/v1/ledger/checkpoint", nil, "")
	if lines := strings.Split(string(cp), "\n"); code != 200 || len(lines) < 2 || lines[1] != strconv.FormatInt(size0+int64(acked), 10) {
		t.Errorf("checkpoint: %d %.200q, want size %d", code, cp, size0+int64(acked))
	}

	// Every acknowledged submission is exactly one packet, in its origin's
	// outbox, and nothing else is there.
	outbox := map[string]int{}
	for _, who := range submitters {
		c := &loadClient{e: e, http: client, who: who, token: e.Tokens[who]}
		// The listing is paginated: read every page.
		var ps []loadPacket
		for cursor := ""; ; {
			code, b, _ := c.do(kList, "GET", "/v1/packets?box=outbox&limit=500&cursor="+cursor, nil, "")
			var v struct {
				Packets    []loadPacket
				NextCursor string `json:"next_cursor"`
			}
			if code != 200 || json.Unmarshal(b, &v) != nil {
				t.Fatalf("outbox of %s: %d %.200s", who, code, b)
			}
			ps = append(ps, v.Packets...)
			if cursor = v.NextCursor; cursor == "" {
				break
			}
		}
		for _, p := range ps {
			outbox[p.ID]++
			if want[p.ID][gateway.EntrySubmitted] != 1 {
				t.Errorf("packet %s is in an outbox but was submitted %d times", p.ID, want[p.ID][gateway.EntrySubmitted])
			}
		}
	}
	for _, id := range submitted {
		if outbox[id] != 1 {
			t.Errorf("acknowledged packet %s is in the outboxes %d times", id, outbox[id])
		}
	}

	// Each packet's ledger entries, as an auditor reads them, are exactly
	// its acknowledged writes, per type; its status follows from them.
	ids := make(chan string)
	var mu sync.Mutex
	seqs := map[int64]string{}
	var bad []string
	var vwg sync.WaitGroup
	for range 8 {
		vwg.Go(func() {
			c := &loadClient{e: e, http: client, who: azAuditor, token: e.Tokens[azAuditor]}
			for id := range ids {
				code, b, _ := c.do(kGet, "GET", "/v1/ledger/entries?packet="+id, nil, "")
				var v struct {
					Entries []struct {
						Seq    int64  `json:"seq"`
						Type   string `json:"type"`
						Packet string `json:"packet"`
					} `json:"entries"`
				}
				got := map[string]int{}
				err := json.Unmarshal(b, &v)
				mu.Lock()
				for _, en := range v.Entries {
					got[en.Type]++
					if other, dup := seqs[en.Seq]; dup || en.Packet != id {
						bad = append(bad, fmt.Sprintf("entry %d of %s: packet %q, also listed for %q", en.Seq, id, en.Packet, other))
					}
					seqs[en.Seq] = id
				}
				mu.Unlock()
				w := want[id]
				var problem string
				switch {
				case code != 200 || err != nil:
					problem = fmt.Sprintf("entries: %d %.200s", code, b)
				case !maps.Equal(got, w):
					problem = fmt.Sprintf("ledger has %v, acknowledged %v", got, w)
				}
				// The packet's status follows from its acknowledged actions.
				status := gateway.StatusSubmitted
				switch {
				case w[gateway.EntryApproved] > 0:
					status = gateway.StatusApproved
				case w[gateway.EntryReturned] > 0:
					status = gateway.StatusCorrectionRequested
				case w[gateway.EntryReceived] > 0:
					status = gateway.StatusReceived
				}
				code, b, _ = c.do(kGet, "GET", "/v1/packets/"+id, nil, "")
				var p struct {
					Status  string
					History []json.RawMessage
				}
				if problem == "" && (code != 200 || json.Unmarshal(b, &p) != nil || p.Status != status || len(p.History) != len(v.Entries)) {
					problem = fmt.Sprintf("packet: %d status %q with %d events, want %q with %d", code, p.Status, len(p.History), status, len(v.Entries))
				}
				if problem != "" {
					mu.Lock()
					bad = append(bad, id+": "+problem)
					mu.Unlock()
				}
			}
			if c.nfail > 0 {
				mu.Lock()
				bad = append(bad, c.failures...)
				mu.Unlock()
			}
		})
	}
	for id := range want {
		ids <- id
	}
	close(ids)
	vwg.Wait()
	if len(seqs) != acked {
		t.Errorf("the packets' entries number %d; %d writes were acknowledged", len(seqs), acked)
	}
	slices.Sort(bad)
	for i, b := range bad {
		if i == 10 {
			t.Errorf("... and %d more", len(bad)-10)
			break
		}
		t.Error(b)
	}

	// The whole ledger verifies.
	code, b, _ := auditor.do(kGet, "POST", "/v1/ledger/verify", nil, "")
	var rep struct {
		OK   bool  `json:"ok"`
		Size int64 `json:"size"`
	}
	if code != 200 || json.Unmarshal(b, &rep) != nil || !rep.OK {
		t.Errorf("ledger verify: %d %.300s", code, b)
	}
	t.Logf("checked %d packets, %d ledger entries (ledger size %d); verify: ok=%v", len(want), len(seqs), e.Ledger.Size(), rep.OK)
}

// loadReport logs throughput and the latency of each kind of request.
func loadReport(t *testing.T, samples []loadSample, elapsed time.Duration, submissions int) {
	secs := elapsed.Seconds()
	t.Logf("%d clients, %.1f s: %d requests (%.0f/s), %d submissions (%.1f/s)",
		loadClients, secs, len(samples), float64(len(samples))/secs, submissions, float64(submissions)/secs)
	var by [kKinds][]time.Duration
	var codes [kKinds]map[int16]int
	for _, s := range samples {
		by[s.kind] = append(by[s.kind], s.took)
		if codes[s.kind] == nil {
			codes[s.kind] = map[int16]int{}
		}
		codes[s.kind][s.code]++
	}
	for k, ds := range by {
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		t.Logf("  %-8s n=%-6d p50=%-8v p99=%-8v max=%-8v statuses %v", loadKindNames[k], len(ds),
			pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond), codes[k])
	}
}
