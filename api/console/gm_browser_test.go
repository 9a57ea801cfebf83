package console_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emmansun/gmsm/sm3"

	"tongban/api/apitest"
	"tongban/gateway/bundle"
	"tongban/ledger/gmnote"
)

// TestBrowserGM: under the gm profile the in-browser verifier checks the
// SM3 digests too (a byte flipped on the way is caught by both digests),
// and an SM2 key pinned beside the log key is required: the right one
// verifies, another one's leaves the page UNVERIFIABLE, as does a gateway
// whose bundles carry no SM2 line.
func TestBrowserGM(t *testing.T) {
	e := apitest.New(t, apitest.Options{GM: true})
	m, files := apitest.CompanySetup()
	id := e.MustSubmit("jiashan-window:submitter", m, files)
	var articles []byte
	for _, f := range files {
		if f.Kind == "articles" {
			articles = f.Data
		}
	}
	sha, sum3 := sha256.Sum256(articles), sm3.Sum(articles)
	hexSHA, hexSM3 := hex.EncodeToString(sha[:]), hex.EncodeToString(sum3[:])

	// A proxy that alters bundles on the way, re-zipped with right CRCs so
	// the digests are what catches it: a byte of the articles flipped while
	// flip is set, the checkpoint's SM2 line dropped while strip is set.
	var flip, strip atomic.Bool
	target, _ := url.Parse(e.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(r *http.Response) error {
		if !strings.HasSuffix(r.Request.URL.Path, "/bundle") || r.StatusCode != 200 || !flip.Load() && !strip.Load() {
			return nil
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return err
		}
		b, err = rezip(b, func(name string, data []byte) ([]byte, error) {
			switch {
			case flip.Load() && strings.HasPrefix(name, bundle.Materials+"articles/"):
				data[len(data)/2] ^= 1
			case strip.Load() && name == bundle.Checkpoint:
				return stripSM2Line(data)
			}
			return data, nil
		})
		if err != nil {
			return err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		r.ContentLength = int64(len(b))
		r.Header.Set("Content-Length", fmt.Sprint(len(b)))
		return nil
	}
	evil := httptest.NewServer(proxy)
	defer evil.Close()

	b := startBrowser(t, evil.URL)
	b.signIn(e.Tokens["qingpu-amr:reviewer"])
	pin := func(sel, key string) {
		t.Helper()
		b.open("/console/key")
		b.do("pin "+sel, chromedp.WaitVisible(sel+"-input"), chromedp.SetValue(sel+"-input", key), chromedp.Click(sel))
		b.poll("pinned", fmt.Sprintf(`document.querySelector(%q).textContent === %q`, sel+"ned", key))
	}
	check := func(what, want string, in ...string) {
		t.Helper()
		b.open("/console/packets/" + id)
		kind, text := b.verdict()
		if kind != want {
			t.Fatalf("%s: verdict %s, want %s: %s", what, kind, want, text)
		}
		for _, s := range in {
			if !strings.Contains(text, s) {
				t.Fatalf("%s: the verdict lacks %q: %s", what, s, text)
			}
		}
	}

	// The log key only: SM3 is checked in the browser all the same.
	pin("#pin", e.Gateway.LedgerKey())
	check("log key pinned", "INTACT", "sha256 "+hexSHA+" and sm3 "+hexSM3+" match the ledger")
	flip.Store(true)
	check("a byte flipped on the way", "ALTERED", "materials/articles/", "caught by both digests", "the ledger recorded "+hexSM3)
	flip.Store(false)

	// The SM2 key pinned beside it: required.
	pin("#sm2-pin", e.SM2Key)
	check("both keys pinned", "INTACT", "signature (SM2)", "sm3 "+hexSM3)
	strip.Store(true)
	check("no SM2 line", "UNVERIFIABLE", "no SM2 signature by the key given")
	strip.Store(false)
	priv, _, err := gmnote.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := gmnote.NewSigner(e.Ledger.Origin(), priv)
	pin("#sm2-pin", other.VerifierKey())
	check("another SM2 key pinned", "UNVERIFIABLE", "no SM2 signature by the key given")
	b.open("/console/key")
	b.do("unpin SM2", chromedp.WaitVisible("#sm2-unpin"), chromedp.Click("#sm2-unpin"))
	b.poll("SM2 unpinned", `document.querySelector('#sm2-pinned').textContent === '—'`)
	check("SM2 key unpinned", "INTACT")
}

// stripSM2Line removes a checkpoint's last signature line (the SM2 one,
// after the Ed25519 line).
func stripSM2Line(cp []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(cp), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[len(lines)-2], "— ") || !strings.HasPrefix(lines[len(lines)-3], "— ") {
		return nil, fmt.Errorf("the checkpoint has no second signature line:\n%s", cp)
	}
	return []byte(strings.Join(append(lines[:len(lines)-2], lines[len(lines)-1]), "")), nil
}

// rezip rewrites a zip, each file's bytes passed through edit.
func rezip(b []byte, edit func(name string, data []byte) ([]byte, error)) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if data, err = edit(f.Name, data); err != nil {
			return nil, err
		}
		// Stored files (the bundle stores them all) keep their sizes and
		// CRC in the local header, as the gateway writes them.
		fh := f.FileHeader
		if fh.Method != zip.Store {
			return nil, fmt.Errorf("%s is not stored", f.Name)
		}
		fh.Flags &^= 0x8 // no data descriptor
		fh.CRC32, fh.CompressedSize64, fh.UncompressedSize64 = crc32.ChecksumIEEE(data), uint64(len(data)), uint64(len(data))
		w, err := zw.CreateRaw(&fh)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
