package console_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/mod/sumdb/note"

	"tongban/api/apitest"
	"tongban/gateway"
	"tongban/storage/storagetest"
)

// browser drives one real Chromium (Debian's chromium package) through
// the console. It never skips: without a browser the test fails.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// chromium is one browser process shared by the browser tests; each test
// gets its own browser context (cookies, storage), as separate users would.
var chromium struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if chromium.cancel != nil {
		chromium.cancel()
	}
	os.Exit(code)
}

func startBrowser(t *testing.T, base string) *browser {
	t.Helper()
	chromium.once.Do(func() {
		var path string
		for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if p, err := exec.LookPath(name); err == nil {
				path = p
				break
			}
		}
		if path == "" {
			chromium.err = fmt.Errorf("no Chromium found on PATH: install Debian's chromium package (.ci/run does: apt-get install chromium fonts-wqy-zenhei)")
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless,
			chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.Flag("lang", "zh-CN"))
		actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		chromium.ctx, chromium.cancel = ctx, func() { cancel(); cancelA() }
		// The first action starts the browser and binds it to ctx, so it
		// runs on ctx itself, not on a context with a deadline.
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			chromium.err = fmt.Errorf("chromium (%s) cannot start: %w", path, err)
		}
	})
	if chromium.err != nil {
		t.Fatal(chromium.err)
	}
	ctx, cancel := chromedp.NewContext(chromium.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("a new browser context: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base}
}

// do runs steps with a deadline, failing the test with what was being done.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v (page %s)", what, err, b.page())
	}
}

// page describes the current page for failure messages.
func (b *browser) page() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + ': ' + document.body.innerText.slice(0, 500)`))
	return s
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// poll waits until expr is true in the page, across navigations (an
// evaluation that meets a page being replaced is tried again).
func (b *browser) poll(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: %s is not true after 30s (last error %v; page %s)", what, expr, err, b.page())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) open(path string) { b.do("open "+path, chromedp.Navigate(b.base+path)) }

func (b *browser) signIn(token string) {
	b.t.Helper()
	b.open("/console/login")
	b.do("sign in", chromedp.WaitVisible("#token"), chromedp.SetValue("#token", token), chromedp.Click("#signin"), chromedp.WaitVisible("#who"))
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click("#signout"), chromedp.WaitVisible("#login-note"))
}

// shot writes a full-page screenshot to docs/screenshots, for the README.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) status(want string) {
	b.t.Helper()
	b.do("status "+want, chromedp.WaitVisible(`#status[data-status="`+want+`"]`))
}

func (b *browser) verdict() (kind, text string) {
	b.t.Helper()
	b.do("verdict", chromedp.WaitVisible("#verdict[data-verdict]"))
	return eval[string](b, `document.querySelector('#verdict').dataset.verdict`), b.text("#verdict") + "\n" + b.text("#verdict-checks")
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBrowserSeedStory walks the seed story in Chromium: Jiashan submits,
// Qingpu checks the evidence in its browser, asks for a correction,
// approves and issues the licence, Jiashan delivers, the auditor searches,
// exports and verifies; then a stored byte is flipped on disk and the
// verdict on the packet page turns to ALTERED, naming the file.
func TestBrowserSeedStory(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	b := startBrowser(t, e.URL)
	dir := t.TempDir()
	files := map[string]string{ // kind -> path
		"consent_form":     writeFile(t, dir, "告知承诺书.pdf", apitest.PDF(700_000)),
		"application_form": writeFile(t, dir, "设立登记申请书.pdf", apitest.PDF(700_000)),
		"applicant_id":     writeFile(t, dir, "法定代表人身份证.jpg", apitest.JPEG(600_000)),
		"address_proof":    writeFile(t, dir, "住所使用证明.pdf", apitest.PDF(700_000)),
		"articles":         writeFile(t, dir, "公司章程.pdf", apitest.PDF(700_000)),
		"appointments":     writeFile(t, dir, "任职文件.ofd", apitest.OFD()),
	}

	// The clerk at the Jiashan window.
	b.open("/")
	b.do("login page", chromedp.WaitVisible("#token"))
	b.shot("login")
	b.signIn(e.Tokens["jiashan-window:submitter"])
	b.open("/console/new?item=ENT-SETUP")
	b.do("fill in", chromedp.WaitVisible("#submit-form"), chromedp.SetValue("#destination", "qingpu-amr"),
		chromedp.SetValue("#applicant_name", "上海青嘉贸易有限公司"), chromedp.SetValue("#applicant_id", "91310118MA1G00011T"))

	// Every problem at once, before any byte is sent: a file too big, one of
	// the wrong type, and the required ones not attached.
	big := filepath.Join(dir, "scan-too-big.pdf")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(big, 21<<20)
	b.do("attach wrong files", chromedp.SetUploadFiles("#file-consent_form", []string{big}),
		chromedp.SetUploadFiles("#file-application_form", []string{writeFile(t, dir, "notes.txt", []byte("hello"))}),
		chromedp.Click("#upload"), chromedp.WaitVisible("#problems"))
	problems := eval[[]string](b, `[...document.querySelectorAll('#problems li')].map(li => li.textContent)`)
	joined := strings.Join(problems, "\n")
	for _, want := range []string{"文件超过大小上限: 长三角地区政务服务“一网通办”服务同意书 (scan-too-big.pdf", "文件格式不符: 公司登记（备案）申请书 (notes.txt", "缺少必交材料: 公司章程"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems shown before upload lack %q:\n%s", want, joined)
		}
	}
	if len(problems) != 6 {
		t.Errorf("want every problem listed (too big, wrong type, four missing), got %d:\n%s", len(problems), joined)
	}
	if n := e.Ledger.Size(); n != 0 {
		t.Fatalf("the refused form reached the gateway: ledger size %d", n)
	}
	b.shot("problems")

	// The right files; the upload is throttled so its progress can be seen.
	for kind, p := range files {
		b.do("attach "+kind, chromedp.SetUploadFiles("#file-"+kind, []string{p}))
	}
	if _, err := chromedp.Call(b.ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{UploadThroughput: 2 << 20, DownloadThroughput: -1}}}); err != nil {
		t.Fatal(err)
	}
	eval[bool](b, `(() => { const bar = document.querySelector('#progress'); sessionStorage.setItem('progress', '[]');
		new MutationObserver(() => { const a = JSON.parse(sessionStorage.getItem('progress')); a.push(bar.value);
		sessionStorage.setItem('progress', JSON.stringify(a)); }).observe(bar, {attributes: true}); return true; })()`)
	b.do("upload", chromedp.Click("#upload"))
	b.poll("progress", `(() => { const v = document.querySelector('#progress').value; return v > 5 && v < 95; })()`)
	b.shot("upload")
	b.do("receipt", chromedp.WaitVisible("#receipt"))
	if _, err := chromedp.Call(b.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{UploadThroughput: -1, DownloadThroughput: -1}}}); err != nil {
		t.Fatal(err)
	}
	var seen []float64
	json.Unmarshal([]byte(eval[string](b, `sessionStorage.getItem('progress')`)), &seen)
	if len(seen) < 3 || seen[len(seen)-1] != 100 {
		t.Errorf("upload progress seen: %v, want several steps ending at 100", seen)
	}
	id := strings.TrimSpace(b.text("#receipt-id"))
	if !strings.HasPrefix(id, "pk-") {
		t.Fatalf("receipt names packet %q", id)
	}
	b.shot("receipt")
	b.open("/console/outbox")
	b.do("outbox", chromedp.WaitVisible(`tr[data-id="`+id+`"]`))
	b.shot("outbox")
	b.signOut()
	b.open("/console/outbox")
	b.do("signed out", chromedp.WaitVisible("#token"))

	// The Qingpu reviewer pins the log key, obtained out of band, once.
	b.signIn(e.Tokens["qingpu-amr:reviewer"])
	b.open("/console/key")
	key := e.Gateway.LedgerKey()
	b.do("pin", chromedp.WaitVisible("#pin-input"), chromedp.SetValue("#pin-input", key), chromedp.Click("#pin"))
	if got := b.text("#pinned"); got != key {
		t.Fatalf("pinned %q, want %q", got, key)
	}
	b.open("/console/inbox")
	b.do("inbox", chromedp.WaitVisible("#packets"))
	if top := eval[string](b, `document.querySelector('#packets tbody tr').dataset.id`); top != id {
		t.Fatalf("top of the inbox is %s, want %s", top, id)
	}
	b.shot("inbox")
	b.do("English", chromedp.Click("#lang"))
	b.poll("English page", `document.documentElement.lang === 'en' && document.readyState === 'complete'`)
	if h := b.text("h1"); h != "Inbox" {
		t.Errorf("English inbox title %q", h)
	}
	b.do("Chinese", chromedp.Click("#lang"))
	b.poll("Chinese page", `document.documentElement.lang === 'zh-CN' && document.readyState === 'complete'`)
	b.do("open packet", chromedp.Click(`tr[data-id="`+id+`"] a`), chromedp.WaitVisible("#status"))
	if kind, text := b.verdict(); kind != "INTACT" || !strings.Contains(text, id) {
		t.Fatalf("verdict %s: %s", kind, text)
	}
	b.shot("packet")
	b.do("receive", chromedp.Click("#act-receive"))
	b.status(gateway.StatusReceived)
	b.do("return", chromedp.SetValue("#reason-input", "公司章程缺少股东签字页"), chromedp.Click("#act-return"))
	b.status(gateway.StatusCorrectionRequested)
	if r := b.text("#reason"); r != "公司章程缺少股东签字页" {
		t.Fatalf("reason shown: %q", r)
	}
	b.signOut()

	// The clerk supplements the articles.
	b.signIn(e.Tokens["jiashan-window:submitter"])
	b.open("/console/packets/" + id)
	signed := writeFile(t, dir, "公司章程（含签字页）.pdf", apitest.PDF(800_000))
	b.do("supplement", chromedp.WaitVisible("#supp-articles"), chromedp.SetUploadFiles("#supp-articles", []string{signed}), chromedp.Click("#upload-supplement"))
	b.status(gateway.StatusSubmitted)
	b.signOut()

	// The reviewer receives it again, approves and uploads the licence.
	b.signIn(e.Tokens["qingpu-amr:reviewer"])
	b.open("/console/packets/" + id)
	if kind, text := b.verdict(); kind != "INTACT" {
		t.Fatalf("verdict after the supplement %s: %s", kind, text)
	}
	b.do("receive again", chromedp.Click("#act-receive"))
	b.status(gateway.StatusReceived)
	b.do("approve", chromedp.SetValue("#reason-input", "材料齐全，准予设立登记"), chromedp.Click("#act-approve"))
	b.status(gateway.StatusApproved)
	licence := writeFile(t, dir, "营业执照.pdf", apitest.PDF(300_000))
	b.do("licence", chromedp.SetUploadFiles("#license-file", []string{licence}), chromedp.Click("#upload-license"))
	b.status(gateway.StatusLicenseIssued)
	b.signOut()

	// The clerk delivers.
	b.signIn(e.Tokens["jiashan-window:submitter"])
	b.open("/console/packets/" + id)
	b.do("deliver", chromedp.Click("#act-deliver"))
	b.status(gateway.StatusDelivered)
	b.signOut()

	// The auditor finds it, exports CSV and runs the full verification.
	b.signIn(e.Tokens["yrd-audit:auditor"])
	b.do("search", chromedp.WaitVisible("#search-form"), chromedp.SetValue("#f-item", "ENT-SETUP"),
		chromedp.SetValue("#f-origin", "jiashan-window"), chromedp.SetValue("#f-status", "delivered"),
		chromedp.Click("#search"))
	b.poll("search results", `location.search.includes('status=delivered') && document.readyState === 'complete'`)
	b.do("found", chromedp.WaitVisible(`tr[data-id="`+id+`"]`))
	if n := eval[int](b, `document.querySelectorAll('#packets tbody tr').length`); n != 1 {
		t.Errorf("the search found %d packets, want 1", n)
	}
	b.shot("search")
	csv := eval[string](b, `fetch(document.querySelector('#csv').href).then(r => r.text())`)
	if !strings.Contains(csv, "id,item,origin,destination,status") || !strings.Contains(csv, id+",ENT-SETUP,jiashan-window,qingpu-amr,delivered") {
		t.Fatalf("CSV export:\n%s", csv)
	}
	b.open("/console/ledger")
	b.do("verify", chromedp.WaitVisible("#run-verify"), chromedp.Click("#run-verify"), chromedp.WaitVisible("#verify-ok"))
	if u := eval[string](b, `location.search`); u != "?result=1" {
		t.Errorf("verification ran without the progress script (at %q)", u)
	}
	b.shot("ledger")
	b.open("/console/packets/" + id)
	if kind, text := b.verdict(); kind != "INTACT" {
		t.Fatalf("auditor's verdict %s: %s", kind, text)
	}

	// Bit rot, or tampering, on disk: the verdict turns and names the file.
	p, err := e.Gateway.Get(context.Background(), gateway.Principal{Agency: "yrd-audit", Role: gateway.RoleAuditor}, id)
	if err != nil {
		t.Fatal(err)
	}
	var articles gateway.MaterialRef
	for _, m := range p.Materials {
		if m.Kind == "articles" {
			articles = m
		}
	}
	sum := articles.SHA256
	storagetest.FlipByte(t, filepath.Join(e.Dir, "objects", "objects", sum[0:2], sum[2:4], sum))
	b.open("/console/packets/" + id)
	kind, text := b.verdict()
	if want := "materials/articles/" + articles.Filename; kind != "ALTERED" || !strings.Contains(text, want) {
		t.Fatalf("verdict after the flip %s, want ALTERED naming %s: %s", kind, want, text)
	}
	b.shot("altered")
	b.open("/console/ledger")
	b.do("verify again", chromedp.Click("#run-verify"), chromedp.WaitVisible("#verify-bad"))
	if bad := b.text("#scrub-bad"); !strings.Contains(bad, id) || !strings.Contains(bad, "articles") {
		t.Fatalf("full verification names %q", bad)
	}
}

// TestBrowserSecurity: markup in data renders as text, CSP blocks an
// injected inline script, and a cross-site form post changes nothing.
func TestBrowserSecurity(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	m.Applicant["name"] = `青嘉<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">`
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	e.Act("qingpu-amr:reviewer", id, "receive", "", 200)
	e.Act("qingpu-amr:reviewer", id, "return", `补正<script>window.__xss=3</script>"><img src=x onerror="window.__xss=4">`, 200)
	other := e.MustSubmit("jiashan-window:submitter", m, files)

	b := startBrowser(t, e.URL)
	b.signIn(e.Tokens["qingpu-amr:reviewer"])
	b.open("/console/packets/" + id)
	b.do("packet", chromedp.WaitVisible("#applicant"))
	if got := eval[string](b, `typeof window.__xss + ' ' + document.querySelectorAll('main script, main img').length`); got != "undefined 0" {
		t.Fatalf("markup from data ran or rendered: %s", got)
	}
	if name := b.text("#applicant"); !strings.Contains(name, `<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">`) {
		t.Fatalf("applicant shown as %q", name)
	}
	if reason := b.text("#reason"); !strings.Contains(reason, `<img src=x onerror="window.__xss=4">`) {
		t.Fatalf("reason shown as %q", reason)
	}

	// An inline script injected into the page is blocked by the policy.
	got := eval[map[string]any](b, `new Promise(res => {
		let violated = '';
		document.addEventListener('securitypolicyviolation', e => { violated = e.violatedDirective; });
		const s = document.createElement('script');
		s.textContent = 'window.__inline = 1';
		document.body.appendChild(s);
		setTimeout(() => res({ran: window.__inline === 1, violated}), 300);
	})`)
	if got["ran"] != false || !strings.HasPrefix(fmt.Sprint(got["violated"]), "script-src") {
		t.Fatalf("injected inline script: %v", got)
	}

	// A page on another site posts a form at the console: refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form id="f" method="post" action="%s/console/packets/%s/act"><input name="action" value="receive"></form>
			<script>document.getElementById('f').submit()</script>`, e.URL, other)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1) // another site than 127.0.0.1
	b.do("cross-site post", chromedp.Navigate(evilURL))
	b.poll("cross-site post lands", fmt.Sprintf(`location.href.startsWith(%q)`, e.URL))
	b.do("answer", chromedp.WaitReady("body"))
	if body := b.text("body"); !strings.Contains(body, "refused") && !strings.Contains(body, "not signed in") {
		t.Errorf("cross-site post answered %q", body)
	}
	if s := get(t, e, other).Status; s != gateway.StatusSubmitted {
		t.Fatalf("a cross-site post changed the packet to %s", s)
	}
	// The session itself still works from the console's own pages.
	b.open("/console/inbox")
	b.do("inbox", chromedp.WaitVisible(`tr[data-id="`+other+`"]`))
}

// TestBrowserCompromisedGateway: a gateway that alters a bundle on the way
// cannot make the page say INTACT, because the browser verifies the bundle
// itself against the key pinned before; and a gateway that signs with
// another key is reported UNVERIFIABLE, not INTACT.
func TestBrowserCompromisedGateway(t *testing.T) {
	e := apitest.New(t, apitest.Options{})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	var articles []byte
	for _, f := range files {
		if f.Kind == "articles" {
			articles = f.Data
		}
	}
	target, _ := url.Parse(e.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/bundle") || r.StatusCode != 200 {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		i := bytes.Index(b, articles) // stored, not deflated: the bytes are there as they are
		if i < 0 {
			return fmt.Errorf("articles not found in the bundle")
		}
		b[i+len(articles)/2] ^= 1
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	evil := httptest.NewServer(proxy)
	defer evil.Close()

	b := startBrowser(t, evil.URL)
	b.signIn(e.Tokens["qingpu-amr:reviewer"])
	b.open("/console/packets/" + id)
	if kind, _ := b.verdict(); kind != "UNVERIFIABLE" {
		t.Fatalf("with no key pinned the verdict is %s", kind)
	}
	b.open("/console/key")
	b.do("pin", chromedp.WaitVisible("#pin-input"), chromedp.SetValue("#pin-input", e.Gateway.LedgerKey()), chromedp.Click("#pin"))
	b.open("/console/packets/" + id)
	kind, text := b.verdict()
	if kind != "ALTERED" || !strings.Contains(text, "materials/articles/articles.ofd") {
		t.Fatalf("a bundle altered on the way: verdict %s: %s", kind, text)
	}
	// A key other than the log's: the page cannot judge, and says so.
	_, other := newNoteKey(t)
	b.open("/console/key")
	b.do("pin another", chromedp.WaitVisible("#pin-input"), chromedp.SetValue("#pin-input", other), chromedp.Click("#pin"))
	b.open("/console/packets/" + id)
	if kind, text := b.verdict(); kind != "UNVERIFIABLE" {
		t.Fatalf("another key pinned: verdict %s: %s", kind, text)
	}
}

func newNoteKey(t *testing.T) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "tongban.example/other")
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}
