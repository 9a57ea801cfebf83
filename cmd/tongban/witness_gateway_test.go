package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"tongban/api/apitest"
	"tongban/ledger"
	"tongban/ledger/witness"
)

// regionWitness is one witness process with its data directory and key.
type regionWitness struct {
	name, dir, vkey, addr string
	proc                  *witnessProc
	verifier              note.Verifier // torchwood's, from the key file
}

// newRegionWitness creates the witness's key and starts it for the log.
func newRegionWitness(t *testing.T, name, logKey string) *regionWitness {
	t.Helper()
	w := &regionWitness{name: name, dir: filepath.Join(t.TempDir(), name)}
	code, out, errOut := tongban(t, nil, "witness", "key", "--data", w.dir, "--name", name+".witness.yrd")
	if code != 0 {
		t.Fatalf("witness key: %d %s", code, errOut)
	}
	w.vkey = strings.TrimSpace(out)
	w.verifier = twVerifier(t, w.dir)
	w.start(t, logKey)
	return w
}

// start (re)starts the process, on the same address after the first time.
func (w *regionWitness) start(t *testing.T, logKey string) {
	t.Helper()
	args := []string{"--data", w.dir, "--log", logKey}
	if w.addr != "" {
		args = append(args, "--addr", w.addr)
	}
	w.proc = startWitness(t, args...)
	w.addr = strings.TrimPrefix(w.proc.url, "http://")
}

// flag is the gateway's --witness value for w, reached at url.
func (w *regionWitness) flag(url string) string { return w.name + " " + url + " " + w.vkey }

// dropProxy forwards TCP to a target, or, while partitioned, swallows
// connections without ever answering (as a dropping firewall would).
type dropProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	drop   bool
	held   []net.Conn // swallowed while partitioned
	live   []net.Conn // forwarded
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.partition(false) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.drop {
				p.held = append(p.held, c)
				p.mu.Unlock()
				go io.Copy(io.Discard, c)
				continue
			}
			p.live = append(p.live, c)
			p.mu.Unlock()
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", p.target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

func (p *dropProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *dropProxy) partition(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = on
	if on { // connections kept alive are cut too
		for _, c := range p.live {
			c.Close()
		}
		p.live = nil
	}
	if !on {
		for _, c := range p.held {
			c.Close()
		}
		p.held = nil
	}
}

// submitPacket submits the company set-up packet as Jiashan's window and
// returns the status, the Retry-After header and the body.
func submitPacket(t *testing.T, gw *gatewayProc) (int, string, []byte) {
	t.Helper()
	m, files := apitest.CompanySetup()
	body, ct := apitest.Multipart(apitest.SubmissionParts(m, files))
	req, _ := http.NewRequest("POST", gw.url+"/v1/packets", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+gw.tokens["jiashan-window:submitter"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

func getBody(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// cosigners returns the checkpoint's size and which witnesses validly
// cosigned it, checked by torchwood's verifiers.
func cosigners(t *testing.T, signed []byte, logKey string, ws []*regionWitness) (int64, []string) {
	t.Helper()
	lv, err := note.NewVerifier(logKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(lv)); err != nil {
		t.Fatalf("the checkpoint is not signed by the log: %v\n%s", err, signed)
	}
	var names []string
	for _, w := range ws {
		if _, err := note.Open(signed, note.VerifierList(w.verifier)); err == nil {
			names = append(names, w.name)
		}
	}
	cp, err := ledger.ParseCheckpoint([]byte(strings.SplitN(string(signed), "\n\n", 2)[0] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size, names
}

// until polls cond every 100 ms for up to two minutes.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// logKeyFor creates the log's signer key in data before the first start,
// as an operator does to hand the verifier key to the witnesses.
func logKeyFor(t *testing.T, data string) string {
	t.Helper()
	if err := os.MkdirAll(ledgerDir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := tongban(t, nil, "keygen", "--out", filepath.Join(ledgerDir(data), "signer.key"))
	m := regexp.MustCompile(`verifier key: (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("keygen: %d %s %s", code, out, errOut)
	}
	return m[1]
}

// TestWitnessQuorumGateway runs the gateway and four witness processes:
// the three regions' and the audit office's, with a quorum of three. One
// is killed with SIGKILL while cosigning and restarted, one is partitioned
// and caught up; the served checkpoint carries at least three
// cosignatures that torchwood verifies; below the quorum readiness fails
// at once and writes are refused after the grace, then resume.
func TestWitnessQuorumGateway(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logKey := logKeyFor(t, data)
	var ws []*regionWitness
	for _, name := range []string{"qingpu", "wujiang", "jiashan", "audit"} {
		ws = append(ws, newRegionWitness(t, name, logKey))
	}
	audit := newDropProxy(t, ws[3].addr)
	gw := serve(t, data, "--witness", ws[0].flag(ws[0].proc.url), "--witness", ws[1].flag(ws[1].proc.url),
		"--witness", ws[2].flag(ws[2].proc.url), "--witness", ws[3].flag(audit.url()),
		"--witness-quorum", "3", "--witness-grace", "2s")

	served := func() (int64, []string) {
		code, b := getBody(t, gw.url+"/v1/ledger/checkpoint")
		if code != 200 {
			t.Fatalf("checkpoint: %d %s", code, b)
		}
		return cosigners(t, b, logKey, ws)
	}
	// all waits until the newest checkpoint covers size entries and is
	// cosigned by exactly the witnesses named.
	all := func(size int64, want ...string) {
		t.Helper()
		var n int64
		var got []string
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if n, got = served(); n == size && strings.Join(got, ",") == strings.Join(want, ",") {
				return
			}
			if time.Now().After(deadline) {
				_, m := getBody(t, gw.url+"/metrics")
				t.Fatalf("timed out waiting for size %d cosigned by %v: size %d cosigned by %v\n%s", size, want, n, got,
					regexp.MustCompile(`(?m)^tongban_witness.*$`).FindAll(m, -1))
			}
		}
	}
	size := func() int64 {
		code, b := getBody(t, gw.url+"/v1/ledger/tlog/checkpoint")
		if code != 401 { // tiles need a token by default
			t.Fatalf("anonymous tiles checkpoint: %d %s", code, b)
		}
		n, _ := served()
		return n
	}

	for range 3 {
		if code, _, b := submitPacket(t, gw); code != 201 {
			t.Fatalf("submit: %d %s", code, b)
		}
	}
	all(size(), "qingpu", "wujiang", "jiashan", "audit")

	// Qingpu's witness is killed with SIGKILL while the gateway keeps
	// writing (and asking it to cosign), then restarted on its state.
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if code, _, b := submitPacket(t, gw); code != 201 {
				t.Errorf("submit during the crash: %d %s", code, b)
				return
			}
		}
	})
	until(t, "a few more cosigned checkpoints", func() bool { n, _ := served(); return n > 12 })
	ws[0].proc.kill()
	until(t, "writes past the crash", func() bool { n, _ := served(); return n > 24 })
	ws[0].start(t, logKey)
	close(stop)
	writer.Wait()
	all(size(), "qingpu", "wujiang", "jiashan", "audit")

	// The audit office is cut off: three cosignatures still make the quorum.
	audit.partition(true)
	if code, _, b := submitPacket(t, gw); code != 201 {
		t.Fatalf("submit with one witness cut off: %d %s", code, b)
	}
	all(size(), "qingpu", "wujiang", "jiashan")
	if code, b := getBody(t, gw.url+"/readyz"); code != 200 {
		t.Fatalf("readyz with 3 of 4: %d %s", code, b)
	}
	until(t, "the audit witness's lag in the metrics", func() bool {
		_, b := getBody(t, gw.url+"/metrics")
		m := regexp.MustCompile(`tongban_witness_lag_entries\{witness="audit"\} (\d+)`).FindSubmatch(b)
		lag, _ := strconv.Atoi(string(m[1]))
		return m != nil && lag > 0 && bytes.Contains(b, []byte(`tongban_witness_up{witness="audit"} 0`)) &&
			regexp.MustCompile(`tongban_witness_failures_total\{witness="audit"\} [1-9]`).Match(b)
	})
	// Healed, it is caught up with a consistency proof from what it holds.
	audit.partition(false)
	if code, _, b := submitPacket(t, gw); code != 201 {
		t.Fatalf("submit: %d %s", code, b)
	}
	all(size(), "qingpu", "wujiang", "jiashan", "audit")

	// A reviewer's policy: the log key and the four witnesses' keys,
	// three cosignatures needed. The newest packet's bundle and its
	// witnessed receipt meet it.
	policy := []string{"--log-key", logKey, "--state", filepath.Join(t.TempDir(), "state"), "--quorum", "3"}
	for _, w := range ws {
		policy = append(policy, "--witness", w.vkey)
	}
	if bc, rc, out := verifyLatest(t, gw, policy); bc != 0 || rc != 0 {
		t.Fatalf("bundle (exit %d) and receipt (exit %d) under a 3-of-4 policy:\n%s", bc, rc, out)
	}

	// Two witnesses down: below the quorum. Writes go on during the
	// grace; readiness says why (to the auditor); after the grace writes
	// are refused with 503 and Retry-After; they resume when one returns.
	ws[1].proc.kill()
	ws[2].proc.kill()
	if code, _, b := submitPacket(t, gw); code != 201 {
		t.Fatalf("the first write below the quorum is refused: %d %s", code, b)
	}
	// That packet's evidence cannot meet the policy: no quorum has
	// cosigned a tree that holds it.
	if bc, rc, out := verifyLatest(t, gw, policy); bc != 3 || rc != 3 {
		t.Fatalf("bundle (exit %d) and receipt (exit %d) below the quorum, want 3 and 3:\n%s", bc, rc, out)
	}
	until(t, "readyz to report the quorum unreachable", func() bool {
		req, _ := http.NewRequest("GET", gw.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+gw.tokens["yrd-audit:auditor"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 503 && bytes.Contains(b, []byte("quorum")) && bytes.Contains(b, []byte("2 of 4 witnesses"))
	})
	until(t, "writes refused after the grace", func() bool {
		code, retry, b := submitPacket(t, gw)
		if code == 503 {
			if retry == "" || !bytes.Contains(b, []byte("witnesses_unavailable")) {
				t.Fatalf("503 without Retry-After or its code: %q %s", retry, b)
			}
			return true
		}
		if code != 201 {
			t.Fatalf("submit: %d %s", code, b)
		}
		return false
	})
	// Reads still work while writes are refused.
	if code, _ := getBody(t, gw.url+"/v1/ledger/checkpoint"); code != 200 {
		t.Fatalf("checkpoint while refusing writes: %d", code)
	}
	ws[1].start(t, logKey)
	until(t, "writes to resume", func() bool {
		code, _, _ := submitPacket(t, gw)
		return code == 201
	})
	all(size(), "qingpu", "wujiang", "audit")
}

// runFor runs the binary with a time limit and returns exit code and output.
func runFor(t *testing.T, d time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, tongbanBin(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%q did not exit within %s:\n%s", args, d, tail(out.String(), 2000))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// forgeLedger rewrites entry seq of the stopped gateway's ledger with raw
// Badger as an attacker with disk access would: new payload, later
// entries re-chained, tree hashes rebuilt, checkpoints after keep deleted.
func forgeLedger(t *testing.T, data string, seq, keep int64) {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(ledgerDir(data), "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	be := func(p byte, n int64) []byte { return binary.BigEndian.AppendUint64([]byte{p}, uint64(n)) }
	err = db.Update(func(txn *badger.Txn) error {
		var raws [][]byte
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'e'}, PrefetchValues: true})
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			raws = append(raws, v)
		}
		it.Close()
		var hashes []tlog.Hash
		reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = hashes[x]
			}
			return out, nil
		})
		var prev ledger.Hash
		for i, raw := range raws {
			if int64(i) >= seq {
				e, err := ledger.ParseEntry(raw)
				if err != nil {
					return err
				}
				if int64(i) == seq {
					e.Payload = []byte(`{"forged":true}`)
				}
				e.Prev = prev
				if raw, err = e.Marshal(); err != nil {
					return err
				}
				if err := txn.Set(be('e', int64(i)), raw); err != nil {
					return err
				}
			}
			hs, err := tlog.StoredHashes(int64(i), raw, reader)
			if err != nil {
				return err
			}
			hashes = append(hashes, hs...)
			prev = ledger.LeafHash(raw)
		}
		for c := 0; c*64 < len(hashes); c++ {
			var chunk []byte
			for _, h := range hashes[c*64 : min(len(hashes), c*64+64)] {
				chunk = append(chunk, h[:]...)
			}
			if err := txn.Set(be('h', int64(c)), chunk); err != nil {
				return err
			}
		}
		it = txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}})
		var del [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if int64(binary.BigEndian.Uint64(k[1:])) > keep {
				del = append(del, k)
			}
		}
		it.Close()
		for _, k := range del {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWitnessForkRefusedAtStart: the fork attack with raw Badger. The
// restarted gateway refuses to start, naming the sizes, both from its own
// record of what was cosigned and, with that record deleted too, from the
// witnesses; and every witness refuses the forked checkpoint.
func TestWitnessForkRefusedAtStart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logKey := logKeyFor(t, data)
	ws := []*regionWitness{newRegionWitness(t, "qingpu", logKey), newRegionWitness(t, "audit", logKey)}
	args := []string{"--witness", ws[0].flag(ws[0].proc.url), "--witness", ws[1].flag(ws[1].proc.url), "--witness-quorum", "2"}
	gw := serve(t, data, args...)
	if code, _, b := submitPacket(t, gw); code != 201 {
		t.Fatalf("submit: %d %s", code, b)
	}
	_, b := getBody(t, gw.url+"/v1/ledger/checkpoint") // signs the checkpoint the attacker keeps
	early, _ := cosigners(t, b, logKey, ws)
	for range 3 {
		if code, _, b := submitPacket(t, gw); code != 201 {
			t.Fatalf("submit: %d %s", code, b)
		}
	}
	var size int64
	until(t, "both witnesses to cosign the newest checkpoint", func() bool {
		_, b := getBody(t, gw.url+"/v1/ledger/checkpoint")
		n, names := cosigners(t, b, logKey, ws)
		size = n
		return len(names) == 2
	})
	gw.cmd.Process.Signal(os.Interrupt)
	gw.cmd.Wait()
	if early < 1 || size <= early+1 {
		t.Fatalf("sizes %d and %d leave no entry to rewrite", early, size)
	}

	forgeLedger(t, data, early+1, early)
	serveArgs := append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0"}, args...)
	code, out := runFor(t, time.Minute, serveArgs...)
	if code == 0 || !strings.Contains(out, fmt.Sprintf("witnesses cosigned tree size %d with root", size)) {
		t.Fatalf("a forked ledger started, or without the evidence: exit %d\n%s", code, tail(out, 3000))
	}
	// The attacker deletes the gateway's record of cosignatures too: the
	// witnesses tell it their size, beyond the newest checkpoint it holds.
	if err := os.Remove(filepath.Join(data, "cosign.json")); err != nil {
		t.Fatal(err)
	}
	code, out = runFor(t, time.Minute, serveArgs...)
	for _, w := range ws {
		want := fmt.Sprintf("witness %s cosigned tree size %d, but the newest checkpoint the ledger holds is of size %d", w.name, size, early)
		if code == 0 || !strings.Contains(out, want) {
			t.Fatalf("exit %d; want %q in:\n%s", code, want, tail(out, 3000))
		}
	}
	// Nothing was signed by those refused starts.
	ro, err := ledger.Open(ledger.Options{Dir: ledgerDir(data), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	cp, _, err := ro.StoredCheckpoint()
	ro.Close()
	if err != nil || cp.Size != early {
		t.Fatalf("newest stored checkpoint after the refused starts: size %d, %v; want %d", cp.Size, err, early)
	}

	// Signed anyway (the attacker holds the key): every witness refuses it.
	l, err := ledger.Open(ledger.Options{Dir: ledgerDir(data)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	forged, err := l.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		_, err := (&witness.Client{}).Cosign(context.Background(), w.proc.url, size, size, forged, l.ProveConsistency)
		if !errors.Is(err, witness.ErrFork) {
			t.Errorf("witness %s on the forked checkpoint: %v, want a fork refusal", w.name, err)
		}
		ev, _ := filepath.Glob(filepath.Join(w.dir, "evidence", fmt.Sprintf("%d-*.checkpoint", size)))
		if len(ev) != 1 {
			t.Errorf("witness %s kept no evidence of the fork: %v", w.name, ev)
		}
	}
}

// verifyLatest fetches the bundle of the newest packet and its submission's
// witnessed receipt as the auditor, and checks both with the verifier
// flags given (a receipt the gateway cannot witness counts as exit 3). It
// returns the two exit codes and what was printed.
func verifyLatest(t *testing.T, gw *gatewayProc, flags []string) (bundleCode, receiptCode int, out string) {
	t.Helper()
	auditor := gw.tokens["yrd-audit:auditor"]
	var page struct{ Packets []struct{ ID string } }
	if code, b := authGet(t, gw.url+"/v1/packets?box=all&limit=500", auditor); code != 200 || json.Unmarshal(b, &page) != nil || len(page.Packets) == 0 {
		t.Fatalf("packets: %d %s", code, b)
	}
	id := page.Packets[len(page.Packets)-1].ID
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "b.zip")
	if code, o, e := tongban(t, nil, "fetch", id, "--server", gw.url, "--token", auditor, "-o", zipPath); code != 0 {
		t.Fatalf("fetch %s: %d %s%s", id, code, o, e)
	}
	bundleCode, o, e := tongban(t, nil, append([]string{"verify", zipPath, "--packet", id}, flags...)...)
	out = o + e
	var ents struct{ Entries []struct{ Seq int64 } }
	if code, b := authGet(t, gw.url+"/v1/ledger/entries?packet="+id, auditor); code != 200 || json.Unmarshal(b, &ents) != nil || len(ents.Entries) == 0 {
		t.Fatalf("entries of %s: %d %s", id, code, b)
	}
	code, b := authGet(t, fmt.Sprintf("%s/v1/packets/%s/receipts/%d?witnessed=true", gw.url, id, ents.Entries[0].Seq), auditor)
	switch code {
	case 200:
		file := filepath.Join(dir, "r.tlog-proof")
		os.WriteFile(file, b, 0o600)
		rc, o, e := tongban(t, nil, append([]string{"receipt", "verify", file, "--packet", id}, flags...)...)
		return bundleCode, rc, out + o + e
	case 503:
		return bundleCode, 3, out + string(b)
	}
	t.Fatalf("witnessed receipt: %d %s", code, b)
	return
}
