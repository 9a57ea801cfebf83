package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"tongban/ledger"
	"tongban/ledger/format"
	"tongban/ledger/gmnote"
	"tongban/ledger/witness"
)

// makeReceipt appends n entries to a new ledger and returns the receipt of
// entry seq, made as the gateway makes it, and the log's verifier key.
func makeReceipt(t *testing.T, n int, seq int64) ([]byte, string) {
	t.Helper()
	return makeReceiptOpts(t, ledger.Options{}, n, seq)
}

// makeReceiptOpts is makeReceipt with a ledger opened with o (Dir is set).
func makeReceiptOpts(t *testing.T, o ledger.Options, n int, seq int64) ([]byte, string) {
	t.Helper()
	o.Dir = t.TempDir()
	l, err := ledger.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range n {
		_, err := l.Append(context.Background(), ledger.Entry{
			Type: "packet.submitted", Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
			Packet: fmt.Sprint("pk-", i), Payload: json.RawMessage(fmt.Sprintf(`{"item":"ENT-SETUP","n":%d}`, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	rec, err := l.Get(seq)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := l.CheckpointAt(seq + 1)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := l.ProveInclusion(seq, seq+1)
	if err != nil {
		t.Fatal(err)
	}
	return format.Receipt{Index: seq, Extra: rec.Raw, Hashes: hashes, Checkpoint: cp}.Marshal(), l.VerifierKey()
}

func TestReceiptVerify(t *testing.T) {
	good, vkey := makeReceipt(t, 9, 5)
	_, otherKey := makeReceipt(t, 1, 0) // a genuine key of another ledger
	r, err := format.ParseReceipt(good)
	if err != nil || len(r.Hashes) < 2 {
		t.Fatalf("receipt: %v, %d hashes", err, len(r.Hashes))
	}
	edit := func(f func(r *format.Receipt)) []byte {
		c, _ := format.ParseReceipt(good)
		f(&c)
		return c.Marshal()
	}
	replaceLine := func(prefix, with string) []byte {
		lines := strings.Split(string(good), "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				lines[i] = with
				break
			}
		}
		return []byte(strings.Join(lines, "\n"))
	}
	_, witnessVkey, _ := witness.GenerateKey("witness.example")
	root := strings.Split(string(r.Checkpoint), "\n")[2]
	otherRoot := base64.StdEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name    string
		receipt []byte
		args    []string
		code    int
		want    string // in the output or the error
	}{
		{"intact", good, nil, 0, "INTACT"},
		{"intact, its packet", good, []string{"--packet", "pk-5"}, 0, "packet.submitted of packet pk-5 by jiashan-window (submitter)"},
		{"another packet", good, []string{"--packet", "pk-4"}, 1, `belongs to packet "pk-5", not "pk-4"`},
		{"flipped extra", edit(func(r *format.Receipt) { r.Extra = bytes.Replace(r.Extra, []byte(`"n":5`), []byte(`"n":6`), 1) }), nil, 1, "inclusion proof"},
		{"extra of another entry", edit(func(r *format.Receipt) {
			r.Extra = bytes.Replace(r.Extra, []byte(`"packet":"pk-5"`), []byte(`"packet":"pk-4"`), 1)
		}), nil, 1, "inclusion proof"},
		{"extra not canonical", edit(func(r *format.Receipt) { r.Extra = bytes.Replace(r.Extra, []byte(`{"item"`), []byte(`{ "item"`), 1) }), nil, 1, "not a canonical entry"},
		{"payload not canonical", edit(func(r *format.Receipt) {
			r.Extra = bytes.Replace(r.Extra, []byte(`{"item":"ENT-SETUP","n":5}`), []byte(`{"n":5,"item":"ENT-SETUP"}`), 1)
		}), nil, 1, "payload"},
		{"truncated proof", edit(func(r *format.Receipt) { r.Hashes = r.Hashes[:len(r.Hashes)-1] }), nil, 1, "inclusion proof"},
		{"proof hash flipped", edit(func(r *format.Receipt) { r.Hashes[0][0] ^= 1 }), nil, 1, "inclusion proof"},
		{"index moved", edit(func(r *format.Receipt) { r.Index = 4 }), nil, 1, "the entry says seq 5, the receipt index 4"},
		{"index beyond the tree", edit(func(r *format.Receipt) { r.Index = 6 }), nil, 1, "seq 5"},
		{"root altered", bytes.Replace(good, []byte(root), []byte(otherRoot), 1), nil, 1, "signature"},
		{"wrong key", good, []string{"--log-key", otherKey}, 3, "not by the key given"},
		{"no extra", edit(func(r *format.Receipt) { r.Extra = nil }), nil, 3, "no entry"},
		{"not a receipt", []byte("hello\n"), nil, 3, "not a c2sp.org/tlog-proof@v1"},
		{"bad base64 extra", replaceLine("extra ", "extra !!"), nil, 3, "extra is not base64"},
		{"no checkpoint", edit(func(r *format.Receipt) { r.Checkpoint = nil }), nil, 3, "no checkpoint"},
		{"witness quorum unmet", good, []string{"--witness", witnessVkey}, 3, "0 of the witnesses given cosigned"},
		{"quorum 0 with a witness", good, []string{"--witness", witnessVkey, "--quorum", "0"}, 0, "INTACT"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprint(i, ".tlog-proof"))
			os.WriteFile(file, c.receipt, 0o600)
			args := append([]string{"receipt", "verify", file}, c.args...)
			if !containsFlag(c.args, "--log-key") {
				args = append(args, "--log-key", vkey)
			}
			var out bytes.Buffer
			err := run(context.Background(), args, &out, &bytes.Buffer{})
			all := out.String()
			if err != nil {
				all += err.Error()
			}
			if codeOf(err) != c.code || !strings.Contains(all, c.want) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s", codeOf(err), c.code, c.want, all)
			}
			// --json carries the same verdict.
			out.Reset()
			err = run(context.Background(), append(args, "--json"), &out, &bytes.Buffer{})
			var rep struct{ Verdict string }
			if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil || codeOf(err) != c.code ||
				rep.Verdict != map[int]string{0: "INTACT", 1: "ALTERED", 3: "UNVERIFIABLE"}[c.code] {
				t.Fatalf("--json: exit %d, %v, %s", codeOf(err), jerr, out.String())
			}
		})
	}
	for _, args := range [][]string{
		{"receipt", "verify", "x"},
		{"receipt", "verify", "--log-key", vkey},
		{"receipt", "check", "x", "--log-key", vkey},
		{"receipt", "verify", "x", "--log-key", "not a key"},
		{"receipt", "verify", "x", "--log-key", vkey, "--quorum", "1"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); codeOf(err) != 2 {
			t.Errorf("%q: exit %d, %v; want 2", args, codeOf(err), err)
		}
	}
}

// codeOf is the exit code of a command's error (0 for none).
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

func containsFlag(args []string, f string) bool {
	for _, a := range args {
		if a == f {
			return true
		}
	}
	return false
}

// TestReceiptVerifySM2: under the gm profile a receipt's checkpoint carries
// the SM2 line, and --sm2-key requires it: missing or by another key is
// UNVERIFIABLE, altered is ALTERED as an altered Ed25519 line is.
func TestReceiptVerifySM2(t *testing.T) {
	priv, _, err := gmnote.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sm2, err := gmnote.NewSigner(ledger.DefaultOrigin, priv)
	if err != nil {
		t.Fatal(err)
	}
	good, vkey := makeReceiptOpts(t, ledger.Options{CoSigners: []note.Signer{sm2}}, 9, 5)
	std, stdKey := makeReceipt(t, 9, 5) // a standard-profile log's receipt
	r, err := format.ParseReceipt(good)
	if err != nil {
		t.Fatal(err)
	}
	cpText, sigs, _ := strings.Cut(string(r.Checkpoint), "\n\n")
	lines := strings.SplitAfter(strings.TrimSuffix(sigs, "\n"), "\n")
	lines[len(lines)-1] += "\n" // each line ends in a newline
	if len(lines) != 2 || !strings.Contains(lines[0], ledger.DefaultOrigin) {
		t.Fatalf("the receipt's checkpoint has %d signature lines, want Ed25519 and SM2:\n%s", len(lines), r.Checkpoint)
	}
	withLines := func(sigLines ...string) []byte {
		c := r
		c.Checkpoint = []byte(cpText + "\n\n" + strings.Join(sigLines, ""))
		return c.Marshal()
	}
	otherPriv, _, err := gmnote.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := gmnote.NewSigner(ledger.DefaultOrigin, otherPriv)
	elsewhere, _ := gmnote.NewSigner("elsewhere.example", priv) // the right key, another name

	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sm2File := write("sm2.pub", sm2.VerifierKey()+"\n")
	cases := []struct {
		name    string
		receipt []byte
		log     string // default: vkey
		sm2     string // --sm2-key, if any
		code    int
		want    string
	}{
		{"both families", good, "", sm2File, 0, "SM2 line by " + ledger.DefaultOrigin},
		{"key on the command line", good, "", sm2.VerifierKey(), 0, "INTACT"},
		{"old verifier, no --sm2-key", good, "", "", 0, "INTACT"},
		{"SM2 line missing", withLines(lines[0]), "", sm2File, 3, "no SM2 signature by the key given"},
		{"SM2 line missing, old verifier", withLines(lines[0]), "", "", 0, "INTACT"},
		{"standard receipt", std, stdKey, sm2File, 3, "no SM2 signature by the key given"},
		{"SM2 key of another", good, "", other.VerifierKey(), 3, "no SM2 signature by the key given"},
		{"SM2 line of another key", withLines(lines[0], mustSignLine(t, other, cpText)), "", sm2File, 3, "no SM2 signature by the key given"},
		{"SM2 line altered", withLines(lines[0], flipSig(lines[1])), "", sm2File, 1, "checkpoint signature"},
		{"Ed25519 line altered", withLines(flipSig(lines[0]), lines[1]), "", sm2File, 1, "checkpoint signature"},
		{"only the SM2 line", withLines(lines[1]), "", sm2File, 3, "no signature by the log key given"},
		{"SM2 key named for another log", withLines(lines[0], mustSignLine(t, elsewhere, cpText)), "", elsewhere.VerifierKey(), 3, `the SM2 key given is "elsewhere.example"'s`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := c.log
			if log == "" {
				log = vkey
			}
			args := []string{"receipt", "verify", write(fmt.Sprint(i, ".tlog-proof"), string(c.receipt)), "--log-key", log}
			if c.sm2 != "" {
				args = append(args, "--sm2-key", c.sm2)
			}
			var out bytes.Buffer
			err := run(context.Background(), args, &out, &bytes.Buffer{})
			all := out.String()
			if err != nil {
				all += err.Error()
			}
			if codeOf(err) != c.code || !strings.Contains(all, c.want) {
				t.Fatalf("exit %d (want %d), want %q in:\n%s", codeOf(err), c.code, c.want, all)
			}
			out.Reset()
			err = run(context.Background(), append(args, "--json"), &out, &bytes.Buffer{})
			var rep struct {
				Verdict string
				SM2Key  string `json:"sm2_key"`
			}
			if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil || codeOf(err) != c.code ||
				rep.Verdict != map[int]string{0: "INTACT", 1: "ALTERED", 3: "UNVERIFIABLE"}[c.code] {
				t.Fatalf("--json: exit %d, %v, %s", codeOf(err), jerr, out.String())
			}
			if wantKey := c.code == 0 && c.sm2 != ""; wantKey != (rep.SM2Key == fmt.Sprintf("%s+%08x", sm2.Name(), sm2.KeyHash())) {
				t.Fatalf("--json sm2_key %q", rep.SM2Key)
			}
		})
	}
	_, ed25519Key, _ := ledger.GenerateKey("x.example")
	for _, k := range []string{"not a key", ed25519Key, filepath.Join(dir, "absent.pub")} {
		args := []string{"receipt", "verify", write("g.tlog-proof", string(good)), "--log-key", vkey, "--sm2-key", k}
		if err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{}); codeOf(err) != 2 {
			t.Errorf("--sm2-key %q: exit %d, %v; want 2", k, codeOf(err), err)
		}
	}
}

// flipSig flips one bit of a signature line's last byte.
func flipSig(line string) string {
	line = strings.TrimSuffix(line, "\n")
	i := strings.LastIndex(line, " ")
	raw, _ := base64.StdEncoding.DecodeString(line[i+1:])
	raw[len(raw)-1] ^= 1
	return line[:i+1] + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// TestReceiptRemembersCheckpoints: receipt verify keeps the newest
// checkpoint it verified (--state) and refuses a receipt from another
// history of the same log (same key, same size, another root) as a fork,
// saving both signed checkpoints.
func TestReceiptRemembersCheckpoints(t *testing.T) {
	key := filepath.Join(t.TempDir(), "signer.key")
	small, vkey := makeReceiptOpts(t, ledger.Options{KeyFile: key}, 3, 2)
	big, _ := makeReceiptOpts(t, ledger.Options{KeyFile: key}, 9, 5)
	// The same log key over other entries (each carries its append time): a
	// second history.
	forked, forkKey := makeReceiptOpts(t, ledger.Options{KeyFile: key}, 7, 5)
	if forkKey != vkey {
		t.Fatal("the forked ledger has another key")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state", "log")
	rv := func(name string, receipt []byte) (int, string) {
		file := filepath.Join(dir, name)
		os.WriteFile(file, receipt, 0o600)
		var out bytes.Buffer
		err := run(context.Background(), []string{"receipt", "verify", file, "--log-key", vkey, "--state", state}, &out, &bytes.Buffer{})
		if err != nil {
			out.WriteString(err.Error())
		}
		return codeOf(err), out.String()
	}
	if code, out := rv("big", big); code != 0 || !strings.Contains(out, "first checkpoint") {
		t.Fatalf("first receipt: %d\n%s", code, out)
	}
	// Older and offline: no proof to hold it to the remembered one, and said so.
	if code, out := rv("small", small); code != 0 || !strings.Contains(out, "NOT checked against the remembered checkpoint (size 6)") {
		t.Fatalf("older receipt: %d\n%s", code, out)
	}
	if code, out := rv("big-again", big); code != 0 || !strings.Contains(out, "same size 6") {
		t.Fatalf("same receipt again: %d\n%s", code, out)
	}
	code, out := rv("forked", forked)
	if code != 1 || !strings.Contains(out, "ALTERED") || !strings.Contains(out, "two roots for size 6") {
		t.Fatalf("receipt from another history: %d\n%s", code, out)
	}
	saved, _ := filepath.Glob(filepath.Join(dir, "state", "fork-*", "*.checkpoint"))
	if len(saved) != 2 {
		t.Fatalf("fork evidence: %v", saved)
	}
}
