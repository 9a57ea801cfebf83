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
	"sync"
	"testing"

	"tongban/api/apitest"
	"tongban/ledger"
)

// appendEntries appends n entries to the gateway's ledger, concurrently.
func appendEntries(t *testing.T, l *ledger.Ledger, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				_, err := l.Append(context.Background(), ledger.Entry{
					Type: "packet.submitted", Actor: ledger.Actor{Agency: "jiashan-window", Role: "submitter"},
					Packet: fmt.Sprintf("pkt-%d", i%7), Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// readMirrorFile splits a mirror's entries file into its records.
func readMirrorFile(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raws [][]byte
	for len(b) > 0 {
		n := binary.BigEndian.Uint32(b)
		raws, b = append(raws, b[4:4+n]), b[4+n:]
	}
	return raws
}

func writeMirrorFile(t *testing.T, path string, raws [][]byte) {
	t.Helper()
	var b []byte
	for _, r := range raws {
		b = append(binary.BigEndian.AppendUint32(b, uint32(len(r))), r...)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMirrorResumesAndFindsTamperedCopy mirrors more entries than one
// batch of the parallel check, resumes in the middle of an entry bundle,
// and then finds a copy altered on disk: a non-canonical entry, a broken
// chain and a cut file are each named, with exit 1.
func TestMirrorResumesAndFindsTamperedCopy(t *testing.T) {
	env := apitest.New(t, apitest.Options{})
	l := env.Ledger
	appendEntries(t, l, 1100) // 4 full bundles and 76 entries; two batches of the file check
	vkey := l.VerifierKey()
	dir := filepath.Join(t.TempDir(), "mirror")
	mirror := func() (string, error) {
		var out bytes.Buffer
		err := runMirror(context.Background(), []string{"--server", env.URL, "--token", env.Tokens["yrd-audit:auditor"],
			"--log-key", vkey, "--dir", dir}, &out, &out)
		return out.String(), err
	}
	verify := func() (string, error) {
		var out bytes.Buffer
		err := runMirrorVerify([]string{"--dir", dir, "--log-key", vkey}, &out)
		return out.String(), err
	}
	if out, err := mirror(); err != nil || !strings.Contains(out, "mirrored 1100 new entries") {
		t.Fatalf("mirror: %v\n%s", err, out)
	}
	appendEntries(t, l, 300)
	if out, err := mirror(); err != nil || !strings.Contains(out, "mirrored 300 new entries: 1400 verified entries") {
		t.Fatalf("mirror resumed: %v\n%s", err, out)
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "OK: 1400 entries") {
		t.Fatalf("mirror verify: %v\n%s", err, out)
	}
	// The copy matches the ledger entry for entry.
	path := filepath.Join(dir, mirrorEntries)
	good := readMirrorFile(t, path)
	if len(good) != 1400 {
		t.Fatalf("the mirror holds %d records", len(good))
	}
	for i, raw := range good {
		r, err := l.Get(int64(i))
		if err != nil || !bytes.Equal(r.Raw, raw) {
			t.Fatalf("entry %d: mirror holds %q, the ledger %q (%v)", i, raw, r.Raw, err)
		}
	}

	for _, c := range []struct {
		name   string
		alter  func(raws [][]byte) [][]byte
		wanted string
	}{
		{"not canonical", func(raws [][]byte) [][]byte {
			raws[1250] = bytes.Replace(raws[1250], []byte(`"seq":1250,`), []byte(`"seq": 1250,`), 1)
			return raws
		}, "entry 1250: format: entry is not in canonical form"},
		{"chain broken", func(raws [][]byte) [][]byte {
			raws[1030], raws[1031] = raws[1031], raws[1030]
			return raws
		}, "entry 1030: holds seq 1031"},
		{"cut", func(raws [][]byte) [][]byte { return raws[:1399] }, "holds 1399 entries, its checkpoint says 1400"},
	} {
		writeMirrorFile(t, path, c.alter(append([][]byte(nil), good...)))
		out, err := verify()
		if exitCode(err) != 1 || err == nil || !strings.Contains(err.Error(), c.wanted) {
			t.Errorf("%s: mirror verify = exit %d, %v\n%s; want exit 1 naming %q", c.name, exitCode(err), err, out, c.wanted)
		}
	}
	writeMirrorFile(t, path, good)
	if out, err := verify(); err != nil || !strings.Contains(out, "OK: 1400 entries") {
		t.Fatalf("mirror verify of the restored copy: %v\n%s", err, out)
	}
}
