package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"tongban/gateway"
	"tongban/internal/durable"
)

// clientFlags are the flags every API client command shares.
type clientFlags struct {
	server, token string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", envOr("TONGBAN_SERVER", "http://127.0.0.1:8080"), "gateway URL ($TONGBAN_SERVER)")
	fs.StringVar(&c.token, "token", "", "bearer token (default $TONGBAN_TOKEN)")
}

func (c *clientFlags) check() error {
	if c.token == "" {
		c.token = os.Getenv("TONGBAN_TOKEN")
	}
	if c.token == "" {
		return usageError("a token is needed: --token or $TONGBAN_TOKEN")
	}
	c.server = strings.TrimRight(c.server, "/")
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *clientFlags) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	return req, nil
}

// apiError turns a non-2xx answer into an error carrying the server's message.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
		return fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	msg := fmt.Sprintf("server answered %s (%s): %s", resp.Status, e.Error.Code, e.Error.Message)
	for _, k := range slices.Sorted(maps.Keys(e.Error.Fields)) {
		msg += fmt.Sprintf("\n  %s: %s", k, e.Error.Fields[k])
	}
	return errors.New(msg)
}

type submitFile struct {
	kind, path, name, sha256 string
	size                     int64
}

func runSubmit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("submit", flag.ContinueOnError)
	var c apiClient
	c.register(fs, true)
	manifestFile := fs.String("manifest", "", "manifest JSON file (item, destination, applicant[, materials])")
	item := fs.String("item", "", "service item code, e.g. ENT-SETUP")
	dest := fs.String("destination", "", "destination agency id, e.g. qingpu-amr")
	appType := fs.String("applicant-type", "", "person or enterprise")
	appName := fs.String("applicant-name", "", "applicant's name")
	appID := fs.String("applicant-id", "", "resident ID number or unified social credit code")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	manifest := map[string]any{}
	if *manifestFile != "" {
		b, err := os.ReadFile(*manifestFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &manifest); err != nil {
			return fmt.Errorf("manifest %s: %w", *manifestFile, err)
		}
	}
	set := func(k, v string) {
		if v != "" {
			manifest[k] = v
		}
	}
	set("item", *item)
	set("destination", *dest)
	if *appType != "" || *appName != "" || *appID != "" {
		manifest["applicant"] = map[string]string{"type": *appType, "name": *appName, "id": *appID}
	}
	if len(pos) == 0 {
		return usageError("submit needs the files, as KIND=FILE\n%s", flagUsage(fs))
	}
	if _, err := parseKindFiles(pos); err != nil {
		return err
	}
	// Check the files against the catalogue before uploading (or even
	// hashing) any: every problem at once, not one per attempt.
	if code, ok := manifest["item"].(string); ok && code != "" {
		var cat gateway.Catalog
		if err := c.getJSON(ctx, "/v1/catalog", &cat); err != nil {
			return fmt.Errorf("reading the catalogue: %w", err)
		}
		it, ok := cat.Item(code)
		if !ok {
			return refusal([]string{fmt.Sprintf("item: the catalogue has no service item %q", code)})
		}
		if probs := checkFiles(it, pos, true); len(probs) > 0 {
			return refusal(probs)
		}
	}
	files, err := prepareFiles(pos, stderr)
	if err != nil {
		return err
	}
	var specs []map[string]string
	for _, f := range files {
		specs = append(specs, map[string]string{"kind": f.kind, "filename": f.name, "sha256": f.sha256})
	}
	manifest["materials"] = specs
	mj, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	var p gateway.Packet
	if err := c.post(ctx, "/v1/packets", uploadBody(mj, files, stderr), http.StatusCreated, &p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "submitted %s: status %s, ledger seq %d\n", p.ID, p.Status, p.SubmittedSeq)
	fmt.Fprintf(stdout, "  deadline %s\n", localTime(p.Deadline))
	for _, m := range p.Materials {
		fmt.Fprintf(stdout, "  %-20s %12d B  sha256 %s\n", m.Kind, m.Size, m.SHA256)
	}
	return nil
}

// prepareFiles parses KIND=FILE arguments and hashes each file, so the
// server can check the digest it receives against the one sent.
func prepareFiles(args []string, stderr io.Writer) ([]submitFile, error) {
	var out []submitFile
	for _, a := range args {
		kind, path, ok := strings.Cut(a, "=")
		if !ok || kind == "" || path == "" {
			return nil, usageError("%q: files are given as KIND=FILE", a)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		bar := newProgress(stderr, "hashing "+filepath.Base(path), "B", st.Size())
		h := sha256.New()
		_, err = io.Copy(io.MultiWriter(h, progressWriter{bar}), f)
		f.Close()
		bar.Finish()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, submitFile{kind: kind, path: path, name: filepath.Base(path), sha256: hex.EncodeToString(h.Sum(nil)), size: st.Size()})
	}
	return out, nil
}

func writeSubmission(mw *multipart.Writer, manifest []byte, files []submitFile, bar *progress) error {
	if manifest != nil {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="manifest"`)
		h.Set("Content-Type", "application/json")
		w, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if _, err := w.Write(manifest); err != nil {
			return err
		}
	}
	for _, f := range files {
		w, err := mw.CreateFormFile(f.kind, f.name)
		if err != nil {
			return err
		}
		src, err := os.Open(f.path)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.MultiWriter(w, progressWriter{bar}), src)
		src.Close()
		if err != nil {
			return err
		}
	}
	return mw.Close()
}

// progressWriter feeds a progress bar from a stream.
type progressWriter struct{ p *progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Add(int64(len(b)))
	return len(b), nil
}

func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	out := fs.String("o", "", "output file (default: ID.zip, or the material's name)")
	kind := fs.String("material", "", "download one material of this kind instead of the bundle")
	verify := fs.Bool("verify", false, "verify the bundle offline after download")
	keyArg := fs.String("log-key", "", "the log's verifier key or a file holding it, for --verify")
	sm2Arg := fs.String("sm2-key", "", "gm profile: the log's SM2 verifier key or a file holding it, required with --verify")
	var pf policyFlags
	pf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: tongban fetch ID [-o FILE] [--material KIND] [--verify --log-key KEY [--sm2-key KEY] [--witness VKEY]... [--quorum K] [--state FILE]]")
	}
	if err := cf.check(); err != nil {
		return err
	}
	if *verify && *kind != "" {
		return usageError("--verify checks bundles; a single material is verified by the server as it is sent")
	}
	var vkey string
	if *verify {
		if *keyArg == "" {
			return usageError("--verify needs --log-key: the key you trust, obtained out of band")
		}
		if vkey, err = loadVerifierKey(*keyArg); err != nil {
			return err
		}
	}
	vo := verifyOpts{packet: pos[0], state: pf.state, prove: serverProver(&cf)}
	if *sm2Arg != "" {
		if vo.sm2Key, err = loadSM2VerifierKey(*sm2Arg); err != nil {
			return err
		}
	}
	if vo.witnesses, err = pf.policy(); err != nil {
		return err
	}
	id := pos[0]
	path := "/v1/packets/" + id + "/bundle"
	if *kind != "" {
		path = "/v1/packets/" + id + "/materials/" + *kind
	}
	if *out == "" {
		*out = id + ".zip"
		if *kind != "" {
			*out = id + "-" + *kind
		}
	}
	req, err := cf.request(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	f, err := durable.Create(*out, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	bar := newProgress(stderr, "downloading", "B", resp.ContentLength)
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h, progressWriter{bar}), resp.Body)
	bar.Finish()
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want := resp.Header.Get("X-Content-SHA256"); err == nil && want != "" && want != sum {
		err = fmt.Errorf("the download hashes to %s, the server promised %s", sum, want)
	}
	if err != nil {
		return fmt.Errorf("download broke off, nothing kept: %w", err)
	}
	if err := f.Commit(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "saved %s (%d bytes, sha256 %s)\n", *out, n, sum)
	if *verify {
		// A fetched bundle must be the packet asked for.
		return verifyBundle(ctx, *out, vkey, vo, stdout)
	}
	return nil
}

// runHealth asks a gateway's /readyz; for container health checks, where
// there is no curl.
func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	server := fs.String("server", envOr("TONGBAN_SERVER", "http://127.0.0.1:8080"), "gateway URL")
	if pos, err := parseArgs(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usageError("health takes no arguments")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(*server, "/")+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s %s", resp.Status, strings.TrimSpace(string(b)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
