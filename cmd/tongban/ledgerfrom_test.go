package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"tongban/ledger"
)

// makeLedgerFrom makes a ledger of n entries and saves the checkpoint
// signed at size at in a file.
func makeLedgerFrom(t *testing.T, n, at int) (data, file string) {
	t.Helper()
	data = t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: ledgerDir(data)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if i == at {
			cp, err := l.Checkpoint()
			if err != nil {
				t.Fatal(err)
			}
			file = filepath.Join(t.TempDir(), "trusted.checkpoint")
			if err := os.WriteFile(file, cp, 0o600); err != nil {
				t.Fatal(err)
			}
		}
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
	return data, file
}

// TestLedgerVerifyFrom: --from a trusted checkpoint checks the entries
// after it; one deleted after it is found; a file that is not a checkpoint
// of this log is refused as bad usage.
func TestLedgerVerifyFrom(t *testing.T) {
	data, file := makeLedgerFrom(t, 50, 30)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"ledger", "verify", "--data", data, "--from", file}, &out, &errOut); err != nil {
		t.Fatalf("verify --from: %v\n%s", err, out.String())
	}
	for _, want := range []string{"from     30", "size     50", "result   OK"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	db, err := badger.Open(badger.DefaultOptions(filepath.Join(ledgerDir(data), "db")).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		return txn.Delete(binary.BigEndian.AppendUint64([]byte{'e'}, 40))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"ledger", "verify", "--data", data, "--from", file}, &out, &errOut)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "first bad seq 40") {
		t.Fatalf("verify --from with entry 40 deleted: %v\n%s", err, out.String())
	}

	_, otherFile := makeLedgerFrom(t, 5, 3) // another log, another key
	for _, f := range []string{otherFile, filepath.Join(t.TempDir(), "missing")} {
		err = run(context.Background(), []string{"ledger", "verify", "--data", data, "--from", f}, &bytes.Buffer{}, &bytes.Buffer{})
		if exitCode(err) != 2 || !strings.Contains(err.Error(), "--from") {
			t.Errorf("--from %s: %v", f, err)
		}
	}
}

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := progressLines(&b, 10)
	for _, done := range []int64{3, 10, 12, 25, 30} {
		p(done, 30)
	}
	if want := "verified 10 of 30 entries\nverified 25 of 30 entries\nverified 30 of 30 entries\n"; b.String() != want {
		t.Fatalf("progress lines %q, want %q", b.String(), want)
	}
}
