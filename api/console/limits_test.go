package console_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"tongban/api"
	"tongban/api/apitest"
)

// consoleSubmission is the body of a console submission: the session's
// CSRF token, then the manifest and files.
func consoleSubmission(c *client) (*bytes.Buffer, string) {
	m, files := apitest.CompanySetup()
	return apitest.Multipart(append([]apitest.Part{{Name: "csrf", Data: []byte(c.csrf)}}, apitest.SubmissionParts(m, files)...))
}

// rawConsolePost opens a connection and sends the request line and
// headers of a console upload in c's session, with a body of n bytes
// (the caller writes the body, or not).
func rawConsolePost(t *testing.T, e *apitest.Env, c *client, path, ct string, n int, extra string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", e.Server.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: tongban\r\nCookie: %s=%s\r\nAccept: application/json\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n",
		path, c.session.Name, c.session.Value, ct, n, extra)
	return conn
}

// holdConsoleUpload starts a console submission that takes its upload
// slot and waits: it asks for 100-continue, which net/http sends only
// once the handler reads the body, after the slot is taken. It returns
// the connection, or the answer if the server answered instead.
func holdConsoleUpload(t *testing.T, e *apitest.Env, c *client) (net.Conn, *http.Response) {
	t.Helper()
	body, ct := consoleSubmission(c)
	conn := rawConsolePost(t, e, c, "/console/submit", ct, body.Len(), "Expect: 100-continue\r\n")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		t.Fatalf("console upload: no answer: %v", err)
	}
	if resp.StatusCode == http.StatusContinue {
		return conn, nil
	}
	conn.Close()
	return nil, resp
}

// TestConsoleUploadCaps: console uploads take the API's upload slots, in
// all and per principal: the API's caps count both, and beyond them a
// console upload is answered 503 with Retry-After before its body is read.
func TestConsoleUploadCaps(t *testing.T) {
	e := apitest.New(t, apitest.Options{API: func(c *api.Config) {
		c.MaxUploads, c.MaxUploadsPerPrincipal = 3, 2
		c.RateGrace = time.Minute // the held uploads wait without being cut off
	}})
	jiashan := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	wujiang := signIn(t, e.URL, e.Client, e.Tokens["wujiang-window:submitter"])
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	hold := func(c *client, who string) {
		conn, resp := holdConsoleUpload(t, e, c)
		if conn == nil {
			t.Fatalf("console upload by %s within the caps: %d", who, resp.StatusCode)
		}
		held = append(held, conn)
	}
	refused := func(c *client, why string) {
		conn, resp := holdConsoleUpload(t, e, c)
		if conn != nil {
			conn.Close()
			t.Fatalf("%s: console upload admitted", why)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" || !strings.Contains(string(b), `"busy"`) {
			t.Fatalf("%s: %d, Retry-After %q, %s; want 503 busy with Retry-After", why, resp.StatusCode, resp.Header.Get("Retry-After"), b)
		}
	}
	hold(jiashan, "jiashan")
	hold(jiashan, "jiashan")
	refused(jiashan, "third upload of one principal")
	// The API counts the console's uploads against the same principal.
	m, files := apitest.CompanySetup()
	if code, b := e.Submit("jiashan-window:submitter", m, files); code != http.StatusServiceUnavailable {
		t.Fatalf("an API upload beside two console uploads of its principal: %d %.200s", code, b)
	}
	hold(wujiang, "wujiang")
	refused(wujiang, "fourth upload in all")
	for _, c := range held {
		c.Close()
	}
	held = nil
	// The slots come back as the server notices the closed connections.
	for i := 0; ; i++ {
		body, ct := consoleSubmission(jiashan)
		resp, out := jiashan.do("POST", "/console/submit", body, map[string]string{"Content-Type": ct, "Accept": "application/json"})
		if resp.StatusCode == http.StatusOK && strings.Contains(out, `"next"`) {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable || i == 100 {
			t.Fatalf("after the held uploads ended: %d %.200s", resp.StatusCode, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsolePartHeaderCap: the API's guard of part headers holds for
// console uploads: a 1 MiB header is refused with 413, nothing recorded.
func TestConsolePartHeaderCap(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	for _, at := range []string{`name="csrf"`, `name="manifest"`} { // before and after the CSRF token is read
		body, ct := consoleSubmission(c)
		b := body.Bytes()
		i := bytes.Index(b, []byte(at))
		if i < 0 {
			t.Fatalf("no %s part", at)
		}
		i = bytes.IndexByte(b[i:], '\n') + i + 1
		pad := "X-Pad: " + strings.Repeat("a", 1<<20) + "\r\n"
		b = append(b[:i:i], append([]byte(pad), b[i:]...)...)
		resp, out := c.do("POST", "/console/submit", bytes.NewReader(b), map[string]string{"Content-Type": ct, "Accept": "application/json"})
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(out, "part headers") {
			t.Fatalf("1 MiB header in the %s part: %d %.300s; want 413 naming the part headers", at, resp.StatusCode, out)
		}
	}
	if n := e.Ledger.Size(); n != 0 {
		t.Fatalf("refused submissions left %d ledger entries", n)
	}
	// An ordinary console submission still goes through.
	body, ct := consoleSubmission(c)
	if resp, out := c.do("POST", "/console/submit", body, map[string]string{"Content-Type": ct, "Accept": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("ordinary submission: %d %.300s", resp.StatusCode, out)
	}
}

// TestConsoleSlowDripCutOff: the API's minimum body rate holds for
// console uploads. A body sent a byte every 100 ms, under a minimum of 1
// KiB/s after a grace of 1 s, is cut off; the test gives it 100 bytes.
func TestConsoleSlowDripCutOff(t *testing.T) {
	e := apitest.New(t, apitest.Options{IdleTimeout: time.Minute, API: func(c *api.Config) {
		c.MinUploadRate, c.RateGrace = 1<<10, time.Second
	}})
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	body, ct := consoleSubmission(c)
	conn := rawConsolePost(t, e, c, "/console/submit", ct, body.Len(), "")
	defer conn.Close()
	cut := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn) // the answer, then EOF, or an error once closed
		close(cut)
	}()
	sent := -1
drip:
	for i := range 100 {
		select {
		case <-cut:
			sent = i
			break drip
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := conn.Write(body.Bytes()[i : i+1]); err != nil {
			sent = i
			break
		}
	}
	t.Logf("cut off after %d bytes", sent)
	if sent < 0 {
		t.Fatal("a console upload dripping one byte every 100 ms was still being read after 100 bytes")
	}
	if e.Ledger.Size() != 0 {
		t.Fatal("a dropped submission left a ledger entry")
	}
}

// TestConsoleSupplementPartHeaderCap: a supplement, whose parts the
// console re-frames on their way to the gateway, is guarded the same way.
func TestConsoleSupplementPartHeaderCap(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
	e.Act("qingpu-amr:reviewer", id, "return", "缺签字页", 200)
	size := e.Ledger.Size()
	c := signIn(t, e.URL, e.Client, e.Tokens["jiashan-window:submitter"])
	body, ct := apitest.Multipart([]apitest.Part{{Name: "csrf", Data: []byte(c.csrf)},
		{Name: "articles", Filename: "章程.pdf", ContentType: "application/pdf", Data: apitest.PDF(5000)}})
	b := bytes.Replace(body.Bytes(), []byte("Content-Type: application/pdf\r\n"),
		[]byte("Content-Type: application/pdf\r\nX-Pad: "+strings.Repeat("a", 1<<20)+"\r\n"), 1)
	resp, out := c.do("POST", "/console/packets/"+id+"/supplement", bytes.NewReader(b), map[string]string{"Content-Type": ct, "Accept": "application/json"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(out, "part headers") {
		t.Fatalf("1 MiB header in a supplement: %d %.300s; want 413 naming the part headers", resp.StatusCode, out)
	}
	if e.Ledger.Size() != size {
		t.Fatal("a refused supplement left a ledger entry")
	}
}
