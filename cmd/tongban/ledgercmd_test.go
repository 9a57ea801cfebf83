package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"tongban/ledger"
)

func makeLedger(t *testing.T, n int) string {
	t.Helper()
	data := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: ledgerDir(data)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		_, err := l.Append(context.Background(), ledger.Entry{
			Type: "packet.submitted", Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
			Packet: fmt.Sprint("p", i), Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLedgerVerifyCommand(t *testing.T) {
	data := makeLedger(t, 50)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"ledger", "verify", "--data", data}, &out, &errOut); err != nil {
		t.Fatalf("verify of an intact ledger: %v\n%s", err, out.String())
	}
	for _, want := range []string{"size     50", "result   OK", "root     "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if errOut.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", errOut.String())
	}

	// Delete an entry behind the ledger's back: in the middle, and the last.
	for _, seq := range []int64{23, 49} {
		data := makeLedger(t, 50)
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(ledgerDir(data), "db")).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(txn *badger.Txn) error {
			return txn.Delete(binary.BigEndian.AppendUint64([]byte{'e'}, uint64(seq)))
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		out.Reset()
		err = run(context.Background(), []string{"ledger", "verify", "--data", data}, &out, &errOut)
		want := fmt.Sprint("first bad seq ", seq)
		if exitCode(err) != 1 || !strings.Contains(err.Error(), want) || !strings.Contains(out.String(), fmt.Sprint("FAILED at seq ", seq)) {
			t.Fatalf("verify with entry %d deleted: %v\n%s", seq, err, out.String())
		}
	}
}

func TestLedgerVerifyNoLedger(t *testing.T) {
	err := run(context.Background(), []string{"ledger", "verify", "--data", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no ledger") {
		t.Fatalf("got %v", err)
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	for _, args := range [][]string{{"b.zip", "--log-key", "K"}, {"--log-key", "K", "b.zip"}, {"--log-key=K", "--", "b.zip"}} {
		fs := newFlagSetForTest()
		key := fs.String("log-key", "", "")
		pos, err := parseArgs(fs, args)
		if err != nil || *key != "K" || len(pos) != 1 || pos[0] != "b.zip" {
			t.Errorf("parseArgs(%q) = %q, key %q, %v", args, pos, *key, err)
		}
	}
}

func newFlagSetForTest() *flag.FlagSet { return flag.NewFlagSet("t", flag.ContinueOnError) }

// TestGCCommand: gc on a stopped gateway's data collects nothing that is
// referenced; a mistyped --data is refused without creating anything.
func TestGCCommand(t *testing.T) {
	data := makeLedger(t, 3)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"gc", "--data", data, "--dry-run", "--grace", "0s"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("gc: %v", err)
	}
	if !strings.Contains(out.String(), "would delete 0") {
		t.Fatalf("gc output: %s", out.String())
	}
	missing := filepath.Join(t.TempDir(), "no-such-data")
	err := run(context.Background(), []string{"gc", "--data", missing}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no ledger") {
		t.Fatalf("gc of a missing data dir: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("gc created %s", missing)
	}
}

// TestLedgerVerifyKeys: --log-key given and matching says so; a different
// key is UNVERIFIABLE (exit 3), not tampering; without it the output says
// which key was trusted and why.
func TestLedgerVerifyKeys(t *testing.T) {
	data := makeLedger(t, 5)
	l, err := ledger.Open(ledger.Options{Dir: ledgerDir(data), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	vkey := l.VerifierKey()
	l.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"ledger", "verify", "--data", data}, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "trusted because it is the key in") || !strings.Contains(out.String(), vkey) {
		t.Fatalf("no word on the key trusted:\n%s", out.String())
	}
	keyFile := filepath.Join(t.TempDir(), "log.key")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o600)
	out.Reset()
	if err := run(context.Background(), []string{"ledger", "verify", "--data", data, "--log-key", keyFile}, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "given with --log-key") || !strings.Contains(out.String(), "result   OK") {
		t.Fatalf("output:\n%s", out.String())
	}
	_, other, _ := ledger.GenerateKey("tongban.yrd/ledger")
	out.Reset()
	err = run(context.Background(), []string{"ledger", "verify", "--data", data, "--log-key", other}, &out, &bytes.Buffer{})
	if exitCode(err) != 3 || !strings.Contains(out.String(), "UNVERIFIABLE") {
		t.Fatalf("other key: exit %d, %v\n%s", exitCode(err), err, out.String())
	}
	if err := run(context.Background(), []string{"ledger", "verify", "--data", data, "--log-key", "not a key"}, &out, &bytes.Buffer{}); exitCode(err) != 2 {
		t.Fatalf("bad --log-key: exit %d, %v", exitCode(err), err)
	}
}

// TestLedgerVerifyBeforeCanonical: a ledger written before payloads were
// canonical (testdata: four entries made by the earlier code, whose seq 1
// and 3 have payload keys in struct order) verifies as a chain and tree but
// fails the canonical check, naming seq 1 and the count.
func TestLedgerVerifyBeforeCanonical(t *testing.T) {
	data := t.TempDir()
	untar(t, "testdata/ledger-before-canonical.tar.gz", data)
	var out bytes.Buffer
	err := run(context.Background(), []string{"ledger", "verify", "--data", data,
		"--log-key", "tongban.yrd/ledger+3bee5e25+Ad4uY0lw5gnG85KOgwHcka1Lix/m5VtejxQh98oyPn6A"}, &out, &bytes.Buffer{})
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "seq 1 is not canonical") {
		t.Fatalf("exit %d, %v\n%s", exitCode(err), err, out.String())
	}
	for _, want := range []string{"size     4", "2 entries not in canonical form; first: seq 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(name, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
