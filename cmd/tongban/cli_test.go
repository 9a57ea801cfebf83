package main

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/mod/sumdb/note"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/gateway"
	"tongban/ledger"
)

// The CLI tests run the real binary, built once per test process.
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func tongbanBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tongban-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "tongban")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	// Clients remember checkpoints under the user's config directory: keep
	// the tests' memories out of the real one.
	cfg, err := os.MkdirTemp("", "tongban-config-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", cfg)
	code := m.Run()
	os.RemoveAll(cfg)
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// gatewayProc is a `tongban serve` process.
type gatewayProc struct {
	url    string
	data   string
	tokens map[string]string
	cmd    *exec.Cmd
}

// serve starts the binary on a free port with extra args and waits until
// it listens. Without --config it runs the demo set-up.
func serve(t *testing.T, data string, args ...string) *gatewayProc {
	t.Helper()
	cmd := exec.Command(tongbanBin(t), append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--log", "json"}, args...)...)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		re := regexp.MustCompile(`listening on (http://\S+?);`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		close(urls)
	}()
	var url string
	select {
	case url = <-urls:
	case <-time.After(60 * time.Second):
	}
	if url == "" {
		t.Fatalf("tongban serve did not start:\n%s", stderr.String())
	}
	p := &gatewayProc{url: url, data: data, cmd: cmd, tokens: map[string]string{}}
	if b, err := os.ReadFile(filepath.Join(data, "demo-tokens.json")); err == nil {
		json.Unmarshal(b, &p.tokens)
	}
	return p
}

// tongban runs the binary and returns its exit code, stdout and stderr.
func tongban(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(tongbanBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func (p *gatewayProc) call(t *testing.T, method, path, who string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, p.url+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.tokens[who])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out
}

func writeFiles(t *testing.T, dir string, files []apitest.File) []string {
	var args []string
	for _, f := range files {
		path := filepath.Join(dir, f.Filename)
		if err := os.WriteFile(path, f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, f.Kind+"="+path)
	}
	return args
}

// TestVerifyBundles makes a real bundle through the real binary and checks
// that verify accepts it and rejects each kind of tampering, naming the fault.
func TestVerifyBundles(t *testing.T) {
	dir := t.TempDir()
	gw := serve(t, filepath.Join(dir, "data"))
	m, files := apitest.CompanySetup()
	args := append([]string{"submit", "--server", gw.url, "--item", m.Item, "--destination", m.Destination,
		"--applicant-type", "enterprise", "--applicant-name", "上海青嘉贸易有限公司", "--applicant-id", "91310118MA1G00011T"},
		writeFiles(t, dir, files)...)
	code, out, errOut := tongban(t, []string{"TONGBAN_TOKEN=" + gw.tokens["jiashan-window:submitter"]}, args...)
	if code != 0 {
		t.Fatalf("submit: %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(errOut, "uploading") {
		t.Errorf("progress bar drawn on a pipe: %q", errOut)
	}
	id := regexp.MustCompile(`submitted (pk-\S+):`).FindStringSubmatch(out)[1]
	gw.call(t, "POST", "/v1/packets/"+id+"/actions", "qingpu-amr:reviewer", map[string]string{"action": "receive"})
	gw.call(t, "POST", "/v1/packets/"+id+"/actions", "qingpu-amr:reviewer", map[string]string{"action": "return", "reason": "请补正"})

	keyFile := filepath.Join(dir, "log.key")
	req, _ := http.Get(gw.url + "/v1/ledger/key")
	key, _ := io.ReadAll(req.Body)
	req.Body.Close()
	os.WriteFile(keyFile, key, 0o600)
	vkey := strings.TrimSpace(string(key))

	good := filepath.Join(dir, "bundle.zip")
	code, out, errOut = tongban(t, []string{"TONGBAN_TOKEN=" + gw.tokens["qingpu-amr:reviewer"]},
		"fetch", id, "--server", gw.url, "-o", good, "--verify", "--log-key", keyFile)
	if code != 0 || !strings.Contains(out, "INTACT") {
		t.Fatalf("fetch --verify of an intact bundle: %d\n%s\n%s", code, out, errOut)
	}
	// Flags after the positional argument work too.
	if code, out, _ := tongban(t, nil, "verify", good, "--log-key", vkey); code != 0 {
		t.Fatalf("verify with the key inline: %d\n%s", code, out)
	}
	if code, out, _ := tongban(t, nil, "verify", "--json", "--log-key", vkey, good); code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Fatalf("verify --json: %d\n%s", code, out)
	}

	orig := readZip(t, good)
	var entrySeqs []string
	for name := range orig {
		if strings.HasPrefix(name, "evidence/entries/") {
			entrySeqs = append(entrySeqs, strings.TrimSuffix(strings.TrimPrefix(name, "evidence/entries/"), ".json"))
		}
	}
	received := ""
	for _, s := range entrySeqs {
		if strings.Contains(string(orig["evidence/entries/"+s+".json"]), `"type":"packet.received"`) {
			received = s
		}
	}
	otherSkey, _, _ := ledger.GenerateKey(ledger.DefaultOrigin)

	cases := []struct {
		name   string
		change func(map[string][]byte)
		want   string // must appear in the verdict
		code   int    // 1 ALTERED or INCOMPLETE; 3 UNVERIFIABLE
	}{
		{"flipped material byte", func(f map[string][]byte) {
			b := f["materials/articles/articles.ofd"]
			b[len(b)/2] ^= 1
		}, "materials/articles/articles.ofd", 1},
		{"edited manifest", func(f map[string][]byte) {
			// The applicant's name is in applicant.json now; the manifest
			// holds the destination and the materials.
			f["manifest.json"] = bytes.Replace(f["manifest.json"], []byte("qingpu-amr"), []byte("qingpu-xxx"), 1)
		}, "manifest.json", 1},
		{"edited applicant", func(f map[string][]byte) {
			f["applicant.json"] = bytes.Replace(f["applicant.json"], []byte("上海青嘉"), []byte("上海青浦"), 1)
		}, "applicant.json", 1},
		{"dropped entry", func(f map[string][]byte) {
			delete(f, "evidence/entries/"+received+".json")
			delete(f, "evidence/proofs/"+received+".json")
		}, "missing from the bundle", 1}, // INCOMPLETE
		{"forged checkpoint signature", func(f map[string][]byte) {
			cp := f["evidence/checkpoint"]
			i := bytes.LastIndex(cp, []byte(" ")) + 10
			cp[i] ^= 'A' ^ 'B'
		}, "signature", 1},
		{"checkpoint signed by another key", func(f map[string][]byte) {
			text := f["evidence/checkpoint"][:bytes.Index(f["evidence/checkpoint"], []byte("\n\n"))+1]
			s, _ := note.NewSigner(otherSkey)
			f["evidence/checkpoint"], _ = note.Sign(&note.Note{Text: string(text)}, s)
		}, "signature", 3}, // another key is no evidence of tampering: unverifiable
		{"proof for the wrong size", func(f map[string][]byte) {
			name := "evidence/proofs/" + received + ".json"
			var p map[string]any
			json.Unmarshal(f[name], &p)
			p["size"] = p["size"].(float64) - 1
			f[name], _ = json.Marshal(p)
		}, "entry " + received, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{}
			for k, v := range orig {
				files[k] = bytes.Clone(v)
			}
			tc.change(files)
			path := filepath.Join(t.TempDir(), "tampered.zip")
			writeZip(t, path, files)
			code, out, errOut := tongban(t, nil, "verify", path, "--log-key", keyFile)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			verdict := map[int]string{1: "ALTERED", 3: "UNVERIFIABLE"}[tc.code]
			if strings.HasPrefix(tc.name, "dropped") {
				verdict = "INCOMPLETE"
			}
			if !strings.Contains(out, verdict+":") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("the verdict does not name %q:\n%s%s", tc.want, out, errOut)
			}
		})
	}
}

func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, _ := f.Open()
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func writeZip(t *testing.T, path string, files map[string][]byte) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	// As the gateway writes them: stored, CRC and sizes in the local
	// headers; the verifier refuses data descriptors.
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := files[name]
		fh := &zip.FileHeader{Name: name, Method: zip.Store, CRC32: crc32.ChecksumIEEE(b),
			CompressedSize64: uint64(len(b)), UncompressedSize64: uint64(len(b))}
		if strings.IndexFunc(name, func(r rune) bool { return r >= 0x80 }) >= 0 {
			fh.Flags |= 0x800
		}
		w, _ := zw.CreateRaw(fh)
		w.Write(b)
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSubmitLargeWithProgress uploads 200 MiB with `tongban submit` on a
// pseudo-terminal: the progress bar is drawn, and the stored digest is the
// file's.
func TestSubmitLargeWithProgress(t *testing.T) {
	dir := t.TempDir()
	// A deployment config whose catalogue allows a 256 MiB scan.
	cat := gateway.DefaultCatalog()
	it, _ := cat.Item("RES-HPF-PROOF")
	for i := range it.Materials {
		it.Materials[i].MaxBytes = 256 << 20
	}
	tok, sum := api.NewToken()
	cfg := map[string]any{
		"agencies":         gateway.DemoAgencies(),
		"credentials":      []api.Credential{{Agency: "jiashan-window", Role: "submitter", TokenSHA256: sum}},
		"catalog":          cat,
		"max_upload_bytes": 1 << 30,
	}
	cb, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(dir, "config.json")
	os.WriteFile(cfgPath, cb, 0o600)
	gw := serveConfig(t, filepath.Join(dir, "data"), cfgPath)

	big := filepath.Join(dir, "scan.pdf")
	f, _ := os.Create(big)
	f.WriteString("%PDF-1.7\n")
	io.CopyN(f, rand.Reader, 200<<20)
	f.Close()
	small := filepath.Join(dir, "id.pdf")
	os.WriteFile(small, apitest.PDF(1000), 0o600)

	cmd := exec.Command(tongbanBin(t), "submit", "--server", gw.url, "--token", tok, "--item", "RES-HPF-PROOF",
		"--destination", "qingpu-window", "--applicant-type", "person", "--applicant-name", "张三", "--applicant-id", "310118199003070016",
		"consent_form="+small, "applicant_id="+big)
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	var screen bytes.Buffer
	io.Copy(&screen, tty) // until the process closes its end
	cmd.Wait()
	tty.Close()
	out := screen.String()
	if cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("submit on a terminal: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	if !strings.Contains(out, "uploading [") || !strings.Contains(out, "100%") {
		t.Fatalf("no progress bar on the terminal:\n%q", tail(out, 600))
	}
	want := apitest.SHA256(mustRead(t, big))
	if !regexp.MustCompile(`applicant_id\s+209715209 B\s+sha256 ` + want).MatchString(out) {
		t.Fatalf("the gateway did not store the file's digest %s:\n%s", want, tail(out, 600))
	}
}

func serveConfig(t *testing.T, data, cfg string) *gatewayProc {
	t.Helper()
	return serveWith(t, data, "--config", cfg)
}

// serveWith starts a non-demo gateway: it announces itself in the log only.
func serveWith(t *testing.T, data string, args ...string) *gatewayProc {
	t.Helper()
	cmd := exec.Command(tongbanBin(t), append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--log", "json"}, args...)...)
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() })
	addr := make(chan string, 1)
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			var l struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "tongban serving" {
				addr <- l.Addr
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case a := <-addr:
		return &gatewayProc{url: "http://" + a, data: data, cmd: cmd}
	case <-ctx.Done():
		t.Fatalf("tongban serve --config did not start")
	}
	return nil
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
