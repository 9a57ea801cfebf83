package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tongban/gateway/bundle"
	"tongban/ledger/format"
)

// TestBundleWitnessPolicy: a gateway with two witness processes (quorum
// 2) puts the cosigned checkpoint and a consistency proof into bundles;
// verify with the two witnesses' keys is INTACT and shows the "no later
// than" time; with a third trusted witness and a quorum of 3 it is
// UNVERIFIABLE; stripped of its cosignatures too; a consistency proof
// that fails is a fork, ALTERED.
func TestBundleWitnessPolicy(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	logKey := logKeyFor(t, data)
	ws := []*regionWitness{newRegionWitness(t, "qingpu", logKey), newRegionWitness(t, "audit", logKey)}
	code, out, errOut := tongban(t, nil, "witness", "key", "--data", filepath.Join(t.TempDir(), "idle"), "--name", "idle.witness.yrd")
	if code != 0 {
		t.Fatalf("witness key: %d %s", code, errOut)
	}
	idle := strings.TrimSpace(out)
	gw := serve(t, data, "--witness", ws[0].flag(ws[0].proc.url), "--witness", ws[1].flag(ws[1].proc.url), "--witness-quorum", "2")
	id := submitted(t, gw)
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "a.zip")
	if code, out, errOut := tongban(t, nil, "fetch", id, "--server", gw.url, "--token", gw.tokens["yrd-audit:auditor"], "-o", zipPath); code != 0 {
		t.Fatalf("fetch: %d %s%s", code, out, errOut)
	}
	state := filepath.Join(dir, "state")
	verify := func(path string, args ...string) (int, string) {
		code, out, errOut := tongban(t, nil, append([]string{"verify", path, "--log-key", logKey, "--state", state}, args...)...)
		return code, out + errOut
	}

	code, out = verify(zipPath, "--witness", ws[0].vkey, "--witness", ws[1].vkey, "--quorum", "2", "--json")
	var rep bundle.Report
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); code != 0 || err != nil {
		t.Fatalf("verify with the policy: %d %v\n%s", code, err, out)
	}
	if w := rep.Witnessed; w == nil || !w.Checked || len(w.Valid) != 2 || w.NoLaterThan == nil || w.Checkpoint == nil || w.Checkpoint.Size < rep.Checkpoint.Size {
		t.Fatalf("witnessed: %+v", rep.Witnessed)
	}
	code, out = verify(zipPath, "--witness", ws[0].vkey, "--witness", ws[1].vkey)
	if code != 0 || !strings.Contains(out, "NO LATER THAN") {
		t.Fatalf("verify, text: %d\n%s", code, out)
	}
	code, out = verify(zipPath)
	if code != 0 || !strings.Contains(out, "witnesses: NOT checked") {
		t.Fatalf("verify without a policy: %d\n%s", code, out)
	}
	code, out = verify(zipPath, "--witness", ws[0].vkey, "--witness", ws[1].vkey, "--witness", idle, "--quorum", "3")
	if code != 3 || !strings.Contains(out, "UNVERIFIABLE") || !strings.Contains(out, "2 valid cosignature(s) of the 3 trusted witnesses, fewer than the quorum of 3") {
		t.Fatalf("verify below the quorum: %d\n%s", code, out)
	}
	// A witness key given in a file counts the same.
	kf := filepath.Join(dir, "idle.vkey")
	os.WriteFile(kf, []byte(idle+"\n"), 0o600)
	if code, out = verify(zipPath, "--witness", kf, "--quorum", "1"); code != 3 {
		t.Fatalf("verify with only an idle witness: %d\n%s", code, out)
	}

	b, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	recs := zipRecs(t, b)
	write := func(name string, recs []zrec) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, rawZip(nil, recs, ""), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The cosignatures stripped, the log's own signature kept.
	stripped := recsWith(recs, bundle.Cosigned, func(r *zrec) {
		i := bytes.Index(r.data, []byte("\n\n"))
		var keep []string
		for _, l := range strings.Split(strings.TrimSuffix(string(r.data[i+2:]), "\n"), "\n") {
			if strings.HasPrefix(l, "— "+rep.Checkpoint.Origin+" ") {
				keep = append(keep, l)
			}
		}
		r.data = append(r.data[:i+2:i+2], strings.Join(keep, "\n")+"\n"...)
	})
	if code, out = verify(write("stripped.zip", stripped), "--witness", ws[0].vkey, "--witness", ws[1].vkey); code != 3 || !strings.Contains(out, "fewer than the quorum") {
		t.Fatalf("verify with the cosignatures stripped: %d\n%s", code, out)
	}
	// A consistency proof that does not hold between the two signed
	// checkpoints: a fork.
	forked := recsWith(recs, bundle.Consistency, func(r *zrec) {
		var p bundle.ConsistencyProof
		json.Unmarshal(r.data, &p)
		p.Hashes = append(p.Hashes, format.Hash{1})
		r.data, _ = json.Marshal(p)
	})
	if code, out = verify(write("forked.zip", forked)); code != 1 || !strings.Contains(out, "ALTERED") || !strings.Contains(out, "fork") {
		t.Fatalf("verify with a failing consistency proof: %d\n%s", code, out)
	}

	// A mirror under the same policy advances to the cosigned checkpoint;
	// under one the witnesses cannot meet it is UNVERIFIABLE and holds nothing.
	mirror := func(dir string, args ...string) (int, string) {
		code, out, errOut := tongban(t, nil, append([]string{"mirror", "--server", gw.url, "--token", gw.tokens["yrd-audit:auditor"],
			"--log-key", logKey, "--dir", dir}, args...)...)
		return code, out + errOut
	}
	if code, out = mirror(filepath.Join(dir, "m1"), "--witness", ws[0].vkey, "--witness", ws[1].vkey); code != 0 || !strings.Contains(out, "verified entries") {
		t.Fatalf("mirror with the witness policy: %d\n%s", code, out)
	}
	if code, out = mirror(filepath.Join(dir, "m2"), "--witness", idle); code != 3 || !strings.Contains(out, "UNVERIFIABLE") {
		t.Fatalf("mirror with an idle witness: %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "m2", "checkpoint")); err == nil {
		t.Fatal("a mirror kept a checkpoint it could not verify")
	}
	// Receipts under the same policy: the one proven into the cosigned
	// checkpoint (?witnessed=true) is INTACT with the two witnesses, and
	// UNVERIFIABLE below the quorum; the exact-size receipt carries no
	// cosignatures and is UNVERIFIABLE under any policy.
	auditor := gw.tokens["yrd-audit:auditor"]
	var ents struct{ Entries []struct{ Seq int64 } }
	if code, b := authGet(t, gw.url+"/v1/ledger/entries?packet="+id, auditor); code != 200 || json.Unmarshal(b, &ents) != nil || len(ents.Entries) == 0 {
		t.Fatalf("entries of %s: %d %s", id, code, b)
	}
	seq := fmt.Sprint(ents.Entries[0].Seq)
	receipt := func(name, query string) string {
		code, b := authGet(t, gw.url+"/v1/packets/"+id+"/receipts/"+seq+query, auditor)
		if code != 200 {
			t.Fatalf("receipt%s: %d %s", query, code, b)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	rv := func(file string, args ...string) (int, string) {
		code, out, errOut := tongban(t, nil, append([]string{"receipt", "verify", file, "--log-key", logKey, "--packet", id}, args...)...)
		return code, out + errOut
	}
	witnessed, exact := receipt("witnessed.receipt", "?witnessed=true"), receipt("exact.receipt", "")
	if code, out = rv(witnessed, "--witness", ws[0].vkey, "--witness", ws[1].vkey, "--quorum", "2"); code != 0 || !strings.Contains(out, "INTACT") || !strings.Contains(out, "NO LATER THAN") {
		t.Fatalf("witnessed receipt with the policy: %d\n%s", code, out)
	}
	if code, out = rv(witnessed, "--witness", ws[0].vkey, "--witness", ws[1].vkey, "--witness", idle, "--quorum", "3"); code != 3 {
		t.Fatalf("witnessed receipt below the quorum: %d\n%s", code, out)
	}
	if code, out = rv(exact, "--witness", ws[0].vkey, "--witness", ws[1].vkey); code != 3 {
		t.Fatalf("exact-size receipt under a witness policy: %d\n%s", code, out)
	}
	if code, out = rv(exact); code != 0 {
		t.Fatalf("exact-size receipt with the log key alone: %d\n%s", code, out)
	}

	// ledger verify against the witnesses: trust from outside the
	// directory. A rewritten history that ledger verify alone accepts is
	// refused.
	gw.cmd.Process.Signal(os.Interrupt)
	gw.cmd.Wait()
	lv := func(args ...string) (int, string) {
		code, out, errOut := tongban(t, nil, append([]string{"ledger", "verify", "--data", data, "--log-key", logKey}, args...)...)
		return code, out + errOut
	}
	if code, out = lv("--witness", ws[0].vkey, "--witness", ws[1].vkey); code != 0 || !strings.Contains(out, "the ledger extends it") {
		t.Fatalf("ledger verify with the witnesses: %d\n%s", code, out)
	}
	if code, out = lv("--witness", idle); code != 3 {
		t.Fatalf("ledger verify with an idle witness: %d\n%s", code, out)
	}
	if code, out = lv("--log-key", otherKey(t)); code != 3 {
		t.Fatalf("ledger verify with another log key: %d\n%s", code, out)
	}
	forgeLedger(t, data, 0, 0)
	if code, out = lv(); code != 0 || !strings.Contains(out, "NOT checked against witnesses") {
		t.Fatalf("ledger verify of the rewritten ledger, without witnesses: %d\n%s", code, out)
	}
	if code, out = lv("--witness", ws[0].vkey, "--witness", ws[1].vkey); code != 1 || !strings.Contains(out, "its history was rewritten") {
		t.Fatalf("ledger verify of the rewritten ledger with the witnesses: %d\n%s", code, out)
	}
}

// authGet GETs url with a bearer token and returns the status and body.
func authGet(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
