package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

// rawPost opens a connection and sends the request line and headers of a
// POST with a body of length n (the caller writes the body, or not).
func rawPost(t *testing.T, e *apitest.Env, path, who, ct string, n int, extra string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", e.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: tongban\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n",
		path, e.Tokens[who], ct, n, extra)
	return c
}

// bigHeaderBody is the start of a multipart body whose first part has a
// header of about n bytes, and its content type.
func bigHeaderBody(n int) ([]byte, []byte, string) {
	const boundary = "hostile0123456789"
	head := []byte("--" + boundary + "\r\nContent-Disposition: form-data; name=\"manifest\"\r\nX-Pad: ")
	pad := bytes.Repeat([]byte("a"), n)
	return head, pad, "multipart/form-data; boundary=" + boundary
}

// TestPartHeaderCap: a manifest part with a 1 MiB header is refused (413)
// and nothing is recorded; Go's multipart reader alone takes up to 10 MiB.
func TestPartHeaderCap(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	parts := apitest.SubmissionParts(m, files)
	body, ct := apitest.Multipart(parts)
	// Insert a 1 MiB header line into the manifest part.
	b := body.Bytes()
	i := bytes.Index(b, []byte("Content-Type: application/json\r\n"))
	if i < 0 {
		t.Fatal("no manifest content type in the body")
	}
	pad := "X-Pad: " + strings.Repeat("a", 1<<20) + "\r\n"
	b = append(b[:i:i], append([]byte(pad), b[i:]...)...)
	size := e.Ledger.Size()
	code, resp := e.Do("POST", "/v1/packets", "jiashan-window:submitter", bytes.NewReader(b), ct)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(resp), "part headers") {
		t.Fatalf("1 MiB part header: %d %.300s; want 413 naming the part headers", code, resp)
	}
	if e.Ledger.Size() != size {
		t.Fatal("a refused submission left a ledger entry")
	}
	// Parts whose headers are each under the cap but add up beyond the
	// total (here lowered to 32 KiB): 8 KB in each of the seven parts.
	small := apitest.New(t, apitest.Options{API: func(c *api.Config) { c.MaxPartHeadersTotal = 32 << 10 }})
	body, ct = apitest.Multipart(parts)
	b = body.Bytes()
	b = bytes.ReplaceAll(b, []byte("Content-Disposition:"), []byte("X-Pad: "+strings.Repeat("a", 8000)+"\r\nContent-Disposition:"))
	code, resp = small.Do("POST", "/v1/packets", "jiashan-window:submitter", bytes.NewReader(b), ct)
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("seven parts of 8 KB headers: %d %.300s; want 413", code, resp)
	}
	if small.Ledger.Size() != 0 {
		t.Fatal("a refused submission left a ledger entry")
	}
	// An ordinary submission still goes through, parts split at every byte
	// boundary by the transport notwithstanding.
	e.MustSubmit("jiashan-window:submitter", m, files)
	// So does one with an epilogue after the closing delimiter (RFC 2046)
	// longer than the header cap: it is no part's header.
	body, ct = apitest.Multipart(apitest.SubmissionParts(m, files))
	body.WriteString(strings.Repeat("e", 60<<10))
	if code, resp := e.Do("POST", "/v1/packets", "jiashan-window:submitter", body, ct); code != http.StatusCreated {
		t.Fatalf("a submission with a 60 KiB epilogue: %d %.300s; want 201", code, resp)
	}
}

// dripUntilCut sends the headers of a submission, then its body one byte
// every gap, at most limit bytes; it returns how many bytes the server
// took before it answered or hung up, or -1 if it never did.
func dripUntilCut(t *testing.T, e *apitest.Env, gap time.Duration, limit int) int {
	m, files := apitest.CompanySetup()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	c := rawPost(t, e, "/v1/packets", "jiashan-window:submitter", ct, body.Len(), "")
	defer c.Close()
	cut := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c) // the answer, then EOF, or an error once closed
		close(cut)
	}()
	for i := range min(limit, body.Len()) {
		select {
		case <-cut:
			return i
		case <-time.After(gap):
		}
		if _, err := c.Write(body.Bytes()[i : i+1]); err != nil {
			return i
		}
	}
	return -1
}

// TestSlowDripCutOff: a body sent one byte every 100 ms, under an idle
// timeout of a minute, used to keep its connection open for as long as the
// client liked (each byte restarted the idle timer). With a minimum rate
// of 1 KiB/s after a grace of 1 s it is cut off; the test gives it 100
// bytes (10 s) to happen.
func TestSlowDripCutOff(t *testing.T) {
	e := apitest.New(t, apitest.Options{IdleTimeout: time.Minute, API: func(c *api.Config) {
		c.MinUploadRate, c.RateGrace = 1<<10, time.Second
	}})
	size := e.Ledger.Size()
	n := dripUntilCut(t, e, 100*time.Millisecond, 100)
	t.Logf("cut off after %d bytes", n)
	if n < 0 {
		t.Fatal("a body dripping one byte every 100 ms was still being read after 100 bytes")
	}
	if e.Ledger.Size() != size {
		t.Fatal("a dropped submission left a ledger entry")
	}
}

// holdUpload starts an upload that takes its slot and then waits: it asks
// for 100-continue, which net/http sends only when the handler reads the
// body, after the slot is taken. It returns the connection, or the status
// if the server answered instead.
func holdUpload(t *testing.T, e *apitest.Env, who string) (net.Conn, *http.Response) {
	t.Helper()
	m, files := apitest.CompanySetup()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	c := rawPost(t, e, "/v1/packets", who, ct, body.Len(), "Expect: 100-continue\r\n")
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		t.Fatalf("upload by %s: no answer: %v", who, err)
	}
	if resp.StatusCode == http.StatusContinue {
		return c, nil
	}
	c.Close()
	return nil, resp
}

// TestUploadCaps: beyond the uploads in progress allowed in all and per
// principal, the answer is 503 with Retry-After, before the body is read;
// once they finish, uploads go through again.
func TestUploadCaps(t *testing.T) {
	e := apitest.New(t, apitest.Options{API: func(c *api.Config) {
		c.MaxUploads, c.MaxUploadsPerPrincipal = 3, 2
		c.RateGrace = time.Minute // the held uploads wait without being cut off
	}})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	hold := func(who string) {
		c, resp := holdUpload(t, e, who)
		if c == nil {
			t.Fatalf("upload by %s within the caps: %d", who, resp.StatusCode)
		}
		held = append(held, c)
	}
	refused := func(who, why string) {
		c, resp := holdUpload(t, e, who)
		if c != nil {
			c.Close()
			t.Fatalf("%s: upload by %s admitted", why, who)
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d, Retry-After %q; want 503 with Retry-After", why, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	hold("jiashan-window:submitter")
	hold("jiashan-window:submitter")
	refused("jiashan-window:submitter", "third upload of one principal")
	hold("wujiang-window:submitter")
	refused("qingpu-window:submitter", "fourth upload in all")
	for _, c := range held {
		c.Close()
	}
	held = nil
	// The slots come back as the server notices the closed connections.
	m, files := apitest.CompanySetup()
	for i := 0; ; i++ {
		code, b := e.Submit("jiashan-window:submitter", m, files)
		if code == http.StatusCreated {
			break
		}
		if code != http.StatusServiceUnavailable || i == 100 {
			t.Fatalf("after the held uploads ended: %d %.200s", code, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// vmRSS returns this process's resident set size in bytes.
func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatalf("reading /proc/self/status (the memory test needs Linux): %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// hostileRSSBound is how much the resident set of the process serving may
// grow while 100 hostile connections are open.
const hostileRSSBound = 64 << 20

// TestHostileConnectionsMemory opens 100 connections to a gateway on real
// S3 with the upload caps off (the worst case): 50 send a part header of
// 9 MiB, 50 drip their body one byte every 200 ms. The resident set of the
// process (the gateway runs in it; the S3 server is another process) must
// grow by less than hostileRSSBound. Before part headers were capped, 40
// such headers alone took a gateway from 36 MB to 774 MB.
func TestHostileConnectionsMemory(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Secure: srv.Secure, Region: srv.Region, Bucket: srv.NewBucket(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.New(t, apitest.Options{Store: st, API: func(c *api.Config) {
		c.MaxUploads, c.MaxUploadsPerPrincipal = -1, -1
		c.MinUploadRate, c.RateGrace = 1<<10, 2*time.Second
	}})
	m, files := apitest.CompanySetup()
	e.MustSubmit("jiashan-window:submitter", m, files)
	head, pad, ct := bigHeaderBody(9 << 20)
	runtime.GC()
	debug.FreeOSMemory()
	base := vmRSS(t)

	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if r := vmRSS(t); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()

	var wg sync.WaitGroup
	var headerCut, dripCut atomic.Int64
	for range 50 {
		wg.Go(func() {
			c := rawPost(t, e, "/v1/packets", "jiashan-window:submitter", ct, len(head)+len(pad)+1000, "")
			defer c.Close()
			go io.Copy(io.Discard, c)
			if _, err := c.Write(head); err != nil {
				headerCut.Add(1)
				return
			}
			for off := 0; off < len(pad); off += 64 << 10 {
				if _, err := c.Write(pad[off:min(off+64<<10, len(pad))]); err != nil {
					headerCut.Add(1)
					return
				}
			}
		})
	}
	for range 50 {
		wg.Go(func() {
			if dripUntilCut(t, e, 200*time.Millisecond, 100) >= 0 {
				dripCut.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	grew := peak.Load() - base
	t.Logf("RSS of the serving process: %.1f MiB before, %.1f MiB at peak (+%.1f MiB; bound +%d MiB); %d of 50 big headers and %d of 50 drips cut off",
		float64(base)/(1<<20), float64(peak.Load())/(1<<20), float64(grew)/(1<<20), hostileRSSBound>>20, headerCut.Load(), dripCut.Load())
	if grew >= hostileRSSBound {
		t.Errorf("100 hostile connections grew the serving process by %.1f MiB; bound %d MiB", float64(grew)/(1<<20), hostileRSSBound>>20)
	}
	if headerCut.Load() != 50 || dripCut.Load() != 50 {
		t.Errorf("%d of 50 big part headers and %d of 50 drips were cut off; want all", headerCut.Load(), dripCut.Load())
	}
}

// TestStrictJSONAction: action bodies that encoding/json reads one way and
// a careful reader another are refused with 400, and the packet stays as
// it was: a case-insensitive duplicate (which used to approve), an exact
// duplicate, and a stray closing bracket after the object.
func TestStrictJSONAction(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", http.StatusOK)
	size := e.Ledger.Size()
	for _, body := range []string{
		`{"action":"return","reason":"缺少签字页","ACTION":"approve"}`,
		`{"Action":"approve"}`,
		`{"action":"return","reason":"缺少签字页","action":"approve"}`,
		`{"action":"approve"}]`,
		`{"action":"approve"}}`,
	} {
		code, resp := e.Do("POST", "/v1/packets/"+id+"/actions", "qingpu-amr:reviewer", strings.NewReader(body), "application/json")
		if code != http.StatusBadRequest || !strings.Contains(string(resp), `"malformed"`) {
			t.Errorf("%s: %d %.200s; want 400 malformed", body, code, resp)
		}
	}
	if e.Ledger.Size() != size {
		t.Fatalf("refused actions appended %d entries", e.Ledger.Size()-size)
	}
	code, resp := e.Do("GET", "/v1/packets/"+id, "qingpu-amr:reviewer", nil, "")
	if code != http.StatusOK || !strings.Contains(string(resp), `"status":"received"`) {
		t.Fatalf("after refused actions: %d %.200s; want still received", code, resp)
	}
}

// TestStrictJSONManifest: manifests with a key twice (in any case, at any
// depth) or data after the object are refused with 400 naming the
// manifest, and nothing is recorded.
func TestStrictJSONManifest(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	good := apitest.SubmissionParts(m, files)
	mj := string(good[0].Data)
	for name, manifest := range map[string]string{
		"destination in capitals": strings.Replace(mj, `{"item"`, `{"DESTINATION":"wujiang-medicare","item"`, 1),
		"item twice":              strings.Replace(mj, `{"item":"ENT-SETUP"`, `{"item":"ENT-SETUP","item":"ENT-SETUP"`, 1),
		"applicant name twice":    strings.Replace(mj, `"name":`, `"name":"someone else","name":`, 1),
		"applicant Name":          strings.Replace(mj, `"name":`, `"Name":"someone else","name":`, 1),
		"closing bracket after":   mj + "}",
		"array bracket after":     mj + "]",
	} {
		if manifest == mj {
			t.Fatalf("%s: the manifest was not changed", name)
		}
		parts := append([]apitest.Part{{Name: "manifest", ContentType: "application/json", Data: []byte(manifest)}}, good[1:]...)
		body, ct := apitest.Multipart(parts)
		code, resp := e.Do("POST", "/v1/packets", "jiashan-window:submitter", body, ct)
		if code != http.StatusBadRequest || !strings.Contains(string(resp), `"manifest"`) {
			t.Errorf("%s: %d %.300s; want 400 naming the manifest", name, code, resp)
		}
	}
	if e.Ledger.Size() != 0 {
		t.Fatalf("refused manifests appended %d entries", e.Ledger.Size())
	}
	e.MustSubmit("jiashan-window:submitter", m, files)
}

// TestTextFields: applicant names with control, line-break or invisible
// formatting characters are refused with 422 naming applicant.name;
// reasons keep tabs and line breaks (CR LF becomes LF) and refuse the
// rest with 422 naming reason. Nothing refused reaches the ledger.
func TestTextFields(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	for _, name := range []string{
		"上海青嘉\x00贸易有限公司",
		"上海青嘉贸易\r\n有限公司",
		"上海青嘉贸易\t有限公司",
		"上海青嘉贸易有限公司\x1b[2J",
		"上海青嘉\u0085贸易有限公司",
		"\u202e司公限有易贸嘉青海上",
		"上海青嘉\u2066贸易\u2069有限公司",
		"上海青嘉\u200b贸易有限公司",
		"上海青嘉\u2028贸易有限公司",
		"\ufeff上海青嘉贸易有限公司",
	} {
		m, files := apitest.CompanySetup()
		m.Applicant["name"] = name
		code, resp := e.Submit("jiashan-window:submitter", m, files)
		var v struct {
			Error struct{ Fields map[string]string }
		}
		json.Unmarshal(resp, &v)
		if code != http.StatusUnprocessableEntity || v.Error.Fields["applicant.name"] == "" {
			t.Errorf("name %q: %d %.300s; want 422 naming applicant.name", name, code, resp)
		}
	}
	if e.Ledger.Size() != 0 {
		t.Fatalf("refused names appended %d entries", e.Ledger.Size())
	}

	m, files := apitest.CompanySetup()
	m.Applicant["name"] = "  上海青嘉贸易有限公司 " // surrounding space is trimmed, as before
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", http.StatusOK)
	size := e.Ledger.Size()
	for _, reason := range []string{
		"缺少\x00签字页",
		"缺少签字页\x1b]8;;http://x\x07",
		"\u202e页字签少缺",
		"缺少\u200d签字页",
		"缺少\u2029签字页",
		"缺少签字页\x7f。",
	} {
		code, resp := e.JSON("POST", "/v1/packets/"+id+"/actions", "qingpu-amr:reviewer", map[string]string{"action": "return", "reason": reason})
		var v struct {
			Error struct{ Fields map[string]string }
		}
		json.Unmarshal(resp, &v)
		if code != http.StatusUnprocessableEntity || v.Error.Fields["reason"] == "" {
			t.Errorf("reason %q: %d %.300s; want 422 naming reason", reason, code, resp)
		}
	}
	if e.Ledger.Size() != size {
		t.Fatalf("refused reasons appended %d entries", e.Ledger.Size()-size)
	}
	resp := e.Act("qingpu-amr:reviewer", id, "return", "1. 公司章程缺少股东签字页\r\n2.\t住所证明不清晰\r\n", http.StatusOK)
	var p struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(resp, &p); err != nil || p.Reason != "1. 公司章程缺少股东签字页\n2.\t住所证明不清晰" {
		t.Fatalf("reason as kept: %q (%v); want CR LF as LF, tab kept, trimmed", p.Reason, err)
	}
	code, b := e.Do("GET", "/v1/packets/"+id, "jiashan-window:submitter", nil, "")
	if code != http.StatusOK || !strings.Contains(string(b), `"name":"上海青嘉贸易有限公司"`) {
		t.Fatalf("applicant as kept: %d %.400s", code, b)
	}
}
