package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"tongban/gateway"
)

// runDevgen (hidden) fills a data directory with generated packets, to
// measure the gateway at scale. With --unapplied K it also leaves the
// packet views as a gateway killed before applying the last K entries
// would: the views are saved before K more submissions and put back after.
func runDevgen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("devgen", flag.ContinueOnError)
	data := fset.String("data", "", "the data directory to fill (created)")
	packets := fset.Int("packets", 1000, "packets to submit")
	unapplied := fset.Int("unapplied", 0, "entries the views will not have applied")
	workers := fset.Int("workers", 8, "concurrent submissions")
	if pos, err := parseArgs(fset, args); err != nil {
		return err
	} else if len(pos) > 0 || *data == "" || *packets < 0 || *unapplied < 0 {
		return usageError("devgen --data DIR --packets N [--unapplied K]")
	}
	cfg, _, err := loadConfig("")
	if err != nil {
		return err
	}
	start := time.Now()
	if err := devgenSubmit(ctx, *data, cfg, *packets, *workers); err != nil {
		return err
	}
	if *unapplied > 0 {
		state := filepath.Join(*data, "state")
		saved := state + ".devgen"
		if err := copyDir(state, saved); err != nil {
			return err
		}
		if err := devgenSubmit(ctx, *data, cfg, *unapplied, *workers); err != nil {
			return err
		}
		if err := os.RemoveAll(state); err != nil {
			return err
		}
		if err := os.Rename(saved, state); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "generated %d packets (+%d unapplied) in %s\n", *packets, *unapplied, time.Since(start).Round(time.Second))
	return nil
}

// devgenSubmit submits n small packets, a third of them received.
func devgenSubmit(ctx context.Context, data string, cfg fileConfig, n, workers int) error {
	g, _, closeAll, err := openGateway(ctx, data, cfg, newLogger(io.Discard, "json"), openOptions{})
	if err != nil {
		return err
	}
	defer closeAll()
	origin := gateway.Principal{Agency: "jiashan-window", Role: gateway.RoleSubmitter}
	reviewer := gateway.Principal{Agency: "qingpu-window", Role: gateway.RoleReviewer}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				body, boundary := devgenBody(i)
				p, err := g.Submit(ctx, origin, nil, devgenParts{multipart.NewReader(bytes.NewReader(body), boundary)})
				if err == nil && i%3 == 0 {
					_, err = g.Act(ctx, reviewer, nil, p.ID, "receive", "")
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func devgenBody(i int64) ([]byte, string) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	manifest, _ := json.Marshal(map[string]any{"item": "RES-HPF-PROOF", "destination": "qingpu-window",
		"applicant": map[string]string{"type": "person", "name": "张三", "id": "310118199003070016"},
		"materials": []map[string]string{{"kind": "consent_form", "filename": "consent_form.pdf"}, {"kind": "applicant_id", "filename": "applicant_id.pdf"}}})
	w, _ := mw.CreateFormField("manifest")
	w.Write(manifest)
	for _, k := range []string{"consent_form", "applicant_id"} {
		w, _ := mw.CreateFormFile(k, k+".pdf")
		fmt.Fprintf(w, "%%PDF-1.7\n%% %s %d\n", k, i%97) // few distinct objects
	}
	mw.Close()
	return body.Bytes(), mw.Boundary()
}

type devgenParts struct{ r *multipart.Reader }

func (m devgenParts) Next() (*gateway.Part, error) {
	p, err := m.r.NextPart()
	if err != nil {
		return nil, err
	}
	return &gateway.Part{Name: p.FormName(), Filename: p.FileName(), Body: p}, nil
}

// copyDir copies a closed Badger directory.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
}
