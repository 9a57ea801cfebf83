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

	"tongban/ledger"
	"tongban/ledger/format"
)

// makeReceipt appends n entries to a new ledger and returns the receipt of
// entry seq, made as the gateway makes it, and the log's verifier key.
func makeReceipt(t *testing.T, n int, seq int64) ([]byte, string) {
	t.Helper()
	l, err := ledger.Open(ledger.Options{Dir: t.TempDir()})
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
	_, witnessVkey, _ := ledger.GenerateKey("witness.example")
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
