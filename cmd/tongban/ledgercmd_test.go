package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
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
