package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tongban/api/apitest"
	"tongban/gateway"
	"tongban/storage/s3test"
)

// TestCrashSIGKILL runs the real binary against a real S3 server (VersityGW)
// and kills it with SIGKILL at random moments while workers upload packets
// and act on them. After every kill: the stopped ledger verifies offline;
// after the restart, every acknowledged submit and action is there, every
// object the ledger names exists with its digest (scrub), no packet lacks
// its packet.submitted entry, and idempotent retries of requests cut off by
// the kill made no duplicate.
func TestCrashSIGKILL(t *testing.T) {
	const (
		kills   = 50
		workers = 6
	)
	started := time.Now()
	s3 := s3test.StartVersityGW(t)
	bucket := s3.NewBucket(t)
	env := []string{
		"TONGBAN_S3_ENDPOINT=" + s3.Endpoint,
		"TONGBAN_S3_ACCESS_KEY=" + s3.AccessKey,
		"TONGBAN_S3_SECRET_KEY=" + s3.SecretKey,
		"TONGBAN_S3_BUCKET=" + bucket,
	}
	data := filepath.Join(t.TempDir(), "data")
	cs := &crashState{t: t, status: map[string]string{}, entryChecked: map[string]bool{}}

	var (
		inflightAtKill int64
		uploadsAtKill  int64
		checks         crashTotals
	)
	for round := 0; round < kills; round++ {
		gw := startCrashGW(t, data, env)
		if round > 0 {
			checks.add(cs.check(gw))
		}
		cl := &crashClient{gw: gw, start: time.Now(), hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		retries := cs.takePending()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cs.work(cl, stop, retries)
			}()
		}
		// The workers are running: kill at a random moment among them.
		time.Sleep(time.Duration(50+mrand.IntN(401)) * time.Millisecond)
		inflightAtKill += cl.inflight.Load()
		uploadsAtKill += cl.uploads.Load()
		gw.kill(t)
		close(stop)
		wg.Wait()
		cl.hc.CloseIdleConnections()
		if t.Failed() {
			t.FailNow()
		}
		if code, out, errOut := tongban(t, nil, "ledger", "verify", "--data", data); code != 0 {
			t.Fatalf("round %d: ledger verify after SIGKILL: exit %d\n%s\n%s", round, code, out, errOut)
		}
	}
	// A last restart to check the last round, then a clean stop and one more offline verify.
	gw := startCrashGW(t, data, env)
	final := cs.check(gw)
	checks.add(final)
	gw.interrupt(t)
	if code, out, errOut := tongban(t, nil, "ledger", "verify", "--data", data); code != 0 {
		t.Fatalf("ledger verify after the clean stop: exit %d\n%s\n%s", code, out, errOut)
	}
	subs, acts := cs.acked()
	t.Logf("crash test: %d SIGKILLs (%d requests in flight at the kills, %d of them uploads); acknowledged and checked after restarts: %d submits, %d actions, %d idempotent replays (%d checks of acknowledged responses in all); ledger size %d, %d objects scrubbed at the end; %s",
		kills, inflightAtKill, uploadsAtKill, subs, acts, cs.replays.Load(), checks.acks, final.size, final.objects, time.Since(started).Round(time.Second))
}

// crashGW is one `tongban serve` process of the crash test.
type crashGW struct {
	cmd    *exec.Cmd
	url    string
	tokens map[string]string
	exited chan struct{}
	stderr *tailWriter
}

// startCrashGW starts the binary in the demo set-up with env added and
// waits until it listens.
func startCrashGW(t *testing.T, data string, env []string) *crashGW {
	t.Helper()
	cmd := exec.Command(tongbanBin(t), "serve", "--data", data, "--addr", "127.0.0.1:0", "--log", "json",
		"--gc-interval", "0", "--rate", "0")
	cmd.Env = append(os.Environ(), env...)
	p := &crashGW{cmd: cmd, exited: make(chan struct{}), stderr: &tailWriter{max: 16 << 10}}
	urls := make(chan string, 1)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, p.stderr
	go func() {
		sc := bufio.NewScanner(pr)
		re := regexp.MustCompile(`listening on (http://\S+?);`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case p.url = <-urls:
	case <-p.exited:
		t.Fatalf("tongban serve exited at start: %v\n%s", cmd.ProcessState, p.stderr)
	case <-time.After(90 * time.Second):
		t.Fatalf("tongban serve did not start:\n%s", p.stderr)
	}
	// It listens at once; the packet views may still be catching up with
	// the ledger (503 "recovering" until then).
	for deadline := time.Now().Add(90 * time.Second); ; {
		resp, err := http.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("tongban serve not ready: %v\n%s", err, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(data, "demo-tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &p.tokens); err != nil {
		t.Fatal(err)
	}
	return p
}

// kill sends SIGKILL and waits for the process; it must still have been running.
func (p *crashGW) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("tongban serve exited before it was killed: %v\n%s", p.cmd.ProcessState, p.stderr)
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// interrupt stops the process cleanly.
func (p *crashGW) interrupt(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("tongban serve did not stop on SIGINT:\n%s", p.stderr)
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("tongban serve after SIGINT: %v\n%s", p.cmd.ProcessState, p.stderr)
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append([]byte(nil), w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// crashClient sends requests to one gateway process.
type crashClient struct {
	gw       *crashGW
	hc       *http.Client
	start    time.Time
	inflight atomic.Int64 // requests without an answer yet
	uploads  atomic.Int64 // of which submits
	submits  atomic.Int64 // submits begun
}

// do sends a request as who; err is non-nil when no complete answer came
// (the process died): such a request is not acknowledged.
func (c *crashClient) do(method, path, who string, body []byte, contentType, idemKey string) (int, http.Header, []byte, error) {
	c.inflight.Add(1)
	defer c.inflight.Add(-1)
	req, err := http.NewRequest(method, c.gw.url+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.gw.tokens[who])
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}

// mustJSON is do for the checks, which run with nobody killing the process.
func (c *crashClient) mustJSON(t *testing.T, method, path, who string, body any, out any) {
	t.Helper()
	var b []byte
	ct := ""
	if body != nil {
		b, _ = json.Marshal(body)
		ct = "application/json"
	}
	code, _, resp, err := c.do(method, path, who, b, ct, "")
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, code, resp)
	}
	if err := json.Unmarshal(resp, out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, resp)
	}
}

const (
	crashOrigin   = "jiashan-window:submitter"
	crashReviewer = "qingpu-amr:reviewer"
	crashAuditor  = "yrd-audit:auditor"
)

// ackedSubmit is a 201 answer to a submit.
type ackedSubmit struct {
	id      string
	seq     int64
	digests map[string]string // kind -> sha256
	round   int
}

// ackedAction is a 200 answer to an action.
type ackedAction struct {
	id, action, status, entry string
	seq                       int64
	round                     int
}

// pendingReq is an idempotent request the kill cut off, retried with the
// same key and body after the restart.
type pendingReq struct {
	path, contentType, key string
	body                   []byte
	submit                 *ackedSubmit // digests, for a submit
	action                 string       // for an action
	id                     string       // the action's packet
}

type crashState struct {
	t       *testing.T
	mu      sync.Mutex
	round   int
	submits []*ackedSubmit
	actions []*ackedAction
	status  map[string]string // packet -> last status seen, to pick actions
	pending []*pendingReq
	replays atomic.Int64
	// packets whose entries were read one by one (GET /v1/ledger/entries?packet=)
	entryChecked map[string]bool
}

func (cs *crashState) takePending() chan *pendingReq {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	ch := make(chan *pendingReq, len(cs.pending))
	for _, p := range cs.pending {
		ch <- p
	}
	close(ch)
	cs.pending = nil
	cs.round++
	return ch
}

func (cs *crashState) acked() (int, int) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.submits), len(cs.actions)
}

// work runs one worker until stop: first the cut-off idempotent requests
// of the last round, then a mix of submits and actions. Submits are paced
// (one per 25 ms per round, for all workers) so that uploads go on until
// the kill without piling up objects that every later check scrubs; a
// worker with nothing to submit or act on reads a packet.
func (cs *crashState) work(c *crashClient, stop chan struct{}, retries chan *pendingReq) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		if p, ok := <-retries; ok {
			cs.send(c, p)
			continue
		}
		mayUpload := func() bool {
			if c.submits.Add(1) <= 2+int64(time.Since(c.start)/(25*time.Millisecond)) {
				return true
			}
			c.submits.Add(-1)
			return false
		}
		switch {
		case mrand.IntN(100) < 50 && mayUpload():
			cs.submit(c)
		case cs.act(c):
		case mayUpload():
			cs.submit(c)
		default:
			cs.read(c)
		}
	}
}

// read fetches a packet acknowledged earlier; the answer is not checked.
func (cs *crashState) read(c *crashClient) {
	cs.mu.Lock()
	if len(cs.submits) == 0 {
		cs.mu.Unlock()
		time.Sleep(time.Millisecond)
		return
	}
	id := cs.submits[mrand.IntN(len(cs.submits))].id
	cs.mu.Unlock()
	c.do("GET", "/v1/packets/"+id, crashReviewer, nil, "", "")
}

func newKey() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "crash-" + hex.EncodeToString(b)
}

// submit sends a fresh packet (its files are random, so its objects are new).
func (cs *crashState) submit(c *crashClient) {
	m, files := apitest.CompanySetup()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	s := &ackedSubmit{digests: map[string]string{}}
	for _, f := range files {
		s.digests[f.Kind] = apitest.SHA256(f.Data)
	}
	p := &pendingReq{path: "/v1/packets", contentType: ct, body: body.Bytes(), submit: s}
	if mrand.IntN(3) == 0 {
		p.key = newKey()
	}
	if cs.send(c, p) && p.key != "" && mrand.IntN(2) == 0 {
		// An immediate retry must be answered from memory: same packet, nothing appended.
		cs.send(c, p)
	}
}

// act performs the next action on a packet acknowledged earlier; false if
// there is none to act on.
func (cs *crashState) act(c *crashClient) bool {
	cs.mu.Lock()
	var ids []string
	for id, st := range cs.status {
		if st == gateway.StatusSubmitted || st == gateway.StatusReceived {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		cs.mu.Unlock()
		return false
	}
	id := ids[mrand.IntN(len(ids))]
	action := "receive"
	if cs.status[id] == gateway.StatusReceived {
		action = []string{"approve", "approve", "return", "reject"}[mrand.IntN(4)]
	}
	cs.mu.Unlock()
	req := map[string]string{"action": action}
	if action == "return" || action == "reject" {
		req["reason"] = "请补正：" + newKey()
	}
	b, _ := json.Marshal(req)
	p := &pendingReq{path: "/v1/packets/" + id + "/actions", contentType: "application/json", body: b, action: action, id: id}
	if mrand.IntN(4) == 0 {
		p.key = newKey()
	}
	cs.send(c, p)
	return true
}

var crashEntryOf = map[string]string{
	"receive": gateway.EntryReceived, "return": gateway.EntryReturned,
	"approve": gateway.EntryApproved, "reject": gateway.EntryRejected,
}

// send sends p and records an acknowledged answer; it reports whether p
// was acknowledged. An idempotent request without an answer is kept for a
// retry after the restart.
func (cs *crashState) send(c *crashClient, p *pendingReq) bool {
	t := cs.t
	who := crashOrigin
	if p.submit == nil {
		who = crashReviewer
	}
	if p.submit != nil {
		c.uploads.Add(1)
		defer c.uploads.Add(-1)
	}
	code, h, body, err := c.do("POST", p.path, who, p.body, p.contentType, p.key)
	if err != nil {
		if p.key != "" {
			cs.mu.Lock()
			cs.pending = append(cs.pending, p)
			cs.mu.Unlock()
		}
		return false
	}
	var pk gateway.Packet
	if code == http.StatusOK || code == http.StatusCreated {
		if err := json.Unmarshal(body, &pk); err != nil {
			t.Errorf("POST %s: %d %v: %s", p.path, code, err, body)
			return false
		}
	}
	replayed := h.Get("Idempotency-Replayed") == "true"
	if replayed {
		cs.replays.Add(1)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if p.submit != nil {
		if code != http.StatusCreated {
			t.Errorf("submit: %d %s", code, body)
			return false
		}
		if p.submit.id != "" { // an immediate retry of an acknowledged submit
			if pk.ID != p.submit.id || !replayed {
				t.Errorf("retry of submit %s with key %s: got %s, replayed %v", p.submit.id, p.key, pk.ID, replayed)
			}
			return true
		}
		for _, m := range pk.Materials {
			if p.submit.digests[m.Kind] != m.SHA256 {
				t.Errorf("submit %s answered %s %s, sent %s", pk.ID, m.Kind, m.SHA256, p.submit.digests[m.Kind])
			}
		}
		if len(pk.Materials) != len(p.submit.digests) || pk.ID == "" || pk.SubmittedSeq < 0 {
			t.Errorf("submit answered %s", body)
		}
		p.submit.id, p.submit.seq, p.submit.round = pk.ID, pk.SubmittedSeq, cs.round
		cs.submits = append(cs.submits, p.submit)
		if _, seen := cs.status[pk.ID]; !seen || statusRank(pk.Status) > statusRank(cs.status[pk.ID]) {
			cs.status[pk.ID] = pk.Status
		}
		return true
	}
	switch code {
	case http.StatusOK:
		a := &ackedAction{id: p.id, action: p.action, status: pk.Status, entry: crashEntryOf[p.action], seq: pk.LastSeq, round: cs.round}
		if replayed {
			// The original's outcome, from before the kill: its entry is
			// somewhere in the history, the status at or past its result.
			a.seq = -1
		} else if want := map[string]string{"receive": gateway.StatusReceived, "return": gateway.StatusCorrectionRequested,
			"approve": gateway.StatusApproved, "reject": gateway.StatusRejected}[p.action]; pk.Status != want {
			t.Errorf("%s %s answered status %s", p.action, p.id, pk.Status)
		}
		cs.actions = append(cs.actions, a)
		if statusRank(pk.Status) >= statusRank(cs.status[p.id]) {
			cs.status[p.id] = pk.Status
		}
		return true
	case http.StatusConflict:
		// Another worker acted first, or an action cut off by the kill
		// went through: learn the current status.
		cs.mu.Unlock()
		var cur gateway.Packet
		code, _, b, err := c.do("GET", "/v1/packets/"+p.id, crashReviewer, nil, "", "")
		cs.mu.Lock()
		if err == nil && code == http.StatusOK && json.Unmarshal(b, &cur) == nil && statusRank(cur.Status) > statusRank(cs.status[p.id]) {
			cs.status[p.id] = cur.Status
		}
		return false
	default:
		t.Errorf("%s %s: %d %s", p.action, p.id, code, body)
		return false
	}
}

// statusRank orders the statuses of the workflow as far as the test drives it.
func statusRank(s string) int {
	switch s {
	case gateway.StatusSubmitted:
		return 0
	case gateway.StatusReceived:
		return 1
	case gateway.StatusCorrectionRequested, gateway.StatusApproved, gateway.StatusRejected:
		return 2
	case gateway.StatusLicenseIssued:
		return 3
	case gateway.StatusDelivered:
		return 4
	}
	return -1
}

type crashTotals struct {
	acks    int
	size    int64
	objects int
}

func (a *crashTotals) add(b crashTotals) { a.acks += b.acks }

// check runs after a restart, with no other client: every acknowledged
// answer is reflected, no packet lacks its packet.submitted entry, no
// idempotent retry made a duplicate, and every object the ledger names is
// in S3 with its digest.
func (cs *crashState) check(gw *crashGW) crashTotals {
	t := cs.t
	t.Helper()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := &crashClient{gw: gw, hc: &http.Client{Timeout: 2 * time.Minute}}
	defer c.hc.CloseIdleConnections()
	var tot crashTotals

	// The whole outbox, page by page (the listing is paginated).
	var all []*gateway.Packet
	for cursor := ""; ; {
		var out struct {
			Packets    []*gateway.Packet
			NextCursor string `json:"next_cursor"`
		}
		c.mustJSON(t, "GET", "/v1/packets?box=outbox&limit=500&cursor="+cursor, crashOrigin, nil, &out)
		all = append(all, out.Packets...)
		if cursor = out.NextCursor; cursor == "" {
			break
		}
	}
	views := map[string]*gateway.Packet{}
	byDigest := map[string]string{}
	for _, p := range all {
		if views[p.ID] != nil {
			t.Errorf("round %d: packet %s listed twice", cs.round, p.ID)
		}
		views[p.ID] = p
		for _, m := range p.Materials {
			if m.Kind == "consent_form" { // random in every packet
				if other, dup := byDigest[m.SHA256]; dup {
					t.Errorf("round %d: packets %s and %s hold the same upload: a retry made a duplicate", cs.round, other, p.ID)
				}
				byDigest[m.SHA256] = p.ID
			}
		}
		if len(p.History) == 0 || p.History[0].Type != gateway.EntrySubmitted || p.History[0].Seq != p.SubmittedSeq {
			t.Errorf("round %d: packet %s: history does not start with its packet.submitted entry: %+v", cs.round, p.ID, p.History)
		}
		// Refresh what the workers act on: actions cut off by the kill may have gone through.
		if statusRank(p.Status) > statusRank(cs.status[p.ID]) {
			cs.status[p.ID] = p.Status
		}
	}

	// Every acknowledged submit is there with its digests; those of the
	// last round are also read one by one, as the auditor.
	for _, s := range cs.submits {
		p := views[s.id]
		if s.round == cs.round {
			var one gateway.Packet
			c.mustJSON(t, "GET", "/v1/packets/"+s.id, crashAuditor, nil, &one)
			p = &one
		}
		tot.acks++
		if p == nil {
			t.Errorf("round %d: acknowledged packet %s (seq %d, round %d) is gone", cs.round, s.id, s.seq, s.round)
			continue
		}
		got := map[string]string{}
		for _, m := range p.Materials {
			got[m.Kind] = m.SHA256
		}
		if len(got) != len(s.digests) {
			t.Errorf("round %d: packet %s has materials %v, acknowledged %v", cs.round, s.id, got, s.digests)
		}
		for k, d := range s.digests {
			if got[k] != d {
				t.Errorf("round %d: packet %s %s: %s, acknowledged %s", cs.round, s.id, k, got[k], d)
			}
		}
		if p.SubmittedSeq != s.seq || len(p.History) == 0 || p.History[0].Type != gateway.EntrySubmitted || p.History[0].Seq != s.seq {
			t.Errorf("round %d: packet %s: submitted seq %d, history %+v; acknowledged seq %d", cs.round, s.id, p.SubmittedSeq, p.History, s.seq)
		}
	}
	// Every acknowledged action is in its packet's history, and the packet
	// is in the resulting status or past it.
	for _, a := range cs.actions {
		tot.acks++
		p := views[a.id]
		if p == nil {
			t.Errorf("round %d: packet %s of acknowledged %s is gone", cs.round, a.id, a.action)
			continue
		}
		found := slices.ContainsFunc(p.History, func(e gateway.Event) bool {
			return e.Type == a.entry && (a.seq < 0 || e.Seq == a.seq)
		})
		if !found {
			t.Errorf("round %d: acknowledged %s of %s (seq %d, round %d) is not in its history %+v", cs.round, a.action, a.id, a.seq, a.round, p.History)
		}
		if r := statusRank(p.Status); r < statusRank(a.status) || (r == statusRank(a.status) && p.Status != a.status) {
			t.Errorf("round %d: packet %s is %s after an acknowledged %s to %s", cs.round, a.id, p.Status, a.action, a.status)
		}
	}

	// No packet without its packet.submitted entry: the whole ledger,
	// page by page, and the packets new since the last check one by one.
	withEntry := map[string]int64{}
	for from := int64(0); ; {
		var page struct {
			Entries []struct {
				Seq    int64
				Type   string
				Packet string
			}
		}
		c.mustJSON(t, "GET", fmt.Sprintf("/v1/ledger/entries?from=%d&limit=1000", from), crashAuditor, nil, &page)
		for _, e := range page.Entries {
			if e.Type == gateway.EntrySubmitted {
				withEntry[e.Packet] = e.Seq
			}
		}
		if len(page.Entries) < 1000 {
			break
		}
		from = page.Entries[len(page.Entries)-1].Seq + 1
	}
	for _, p := range all {
		if seq, ok := withEntry[p.ID]; !ok || seq != p.SubmittedSeq {
			t.Errorf("round %d: packet %s (seq %d) has no packet.submitted entry in the ledger", cs.round, p.ID, p.SubmittedSeq)
		}
		if !cs.entryChecked[p.ID] {
			cs.entryChecked[p.ID] = true
			var es struct {
				Entries []struct {
					Seq  int64
					Type string
				}
			}
			c.mustJSON(t, "GET", "/v1/ledger/entries?packet="+p.ID, crashAuditor, nil, &es)
			if len(es.Entries) == 0 || es.Entries[0].Type != gateway.EntrySubmitted || es.Entries[0].Seq != p.SubmittedSeq {
				t.Errorf("round %d: entries of packet %s: %+v", cs.round, p.ID, es.Entries)
			}
		}
	}
	if len(withEntry) != len(all) {
		t.Errorf("round %d: %d packet.submitted entries, %d packets in the outbox", cs.round, len(withEntry), len(all))
	}

	// Every object the ledger names exists with its digest.
	var rep struct {
		OK    bool   `json:"ok"`
		Size  int64  `json:"size"`
		Error string `json:"error"`
		Scrub *struct {
			Objects int               `json:"objects"`
			Missing []json.RawMessage `json:"missing"`
			Corrupt []json.RawMessage `json:"corrupt"`
		} `json:"scrub"`
	}
	c.mustJSON(t, "POST", "/v1/ledger/verify", crashAuditor, map[string]bool{"scrub": true}, &rep)
	if !rep.OK || rep.Scrub == nil || len(rep.Scrub.Missing) != 0 || len(rep.Scrub.Corrupt) != 0 {
		b, _ := json.Marshal(rep)
		t.Errorf("round %d: verify with scrub: %s", cs.round, b)
	} else {
		tot.objects = rep.Scrub.Objects
	}
	tot.size = rep.Size
	if t.Failed() {
		t.FailNow()
	}
	return tot
}
