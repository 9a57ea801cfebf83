package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/sm3"

	"tongban/api/apitest"
	"tongban/gateway/bundle"
	"tongban/ledger/format"
	"tongban/ledger/gmnote"
	"tongban/storage/s3"
	"tongban/storage/s3test"
)

func hexSM3(b []byte) string {
	s := sm3.Sum(b)
	return hex.EncodeToString(s[:])
}

// TestGMSeedStory runs the seed story under the gm profile over HTTP
// against VersityGW, then checks its bundle and every write's receipt with
// the binary: both families verify; an old verifier (no --sm2-key) still
// accepts them; a flipped byte is caught by both digests (bundle) or the
// proof (receipt); an SM2 line missing or by another key is UNVERIFIABLE
// when --sm2-key is given, an altered one ALTERED.
func TestGMSeedStory(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Secure: srv.Secure, Region: srv.Region, Bucket: srv.NewBucket(t)})
	if err != nil {
		t.Fatal(err)
	}
	e := apitest.New(t, apitest.Options{Store: st, GM: true})
	const origin, dest = "jiashan-window:submitter", "qingpu-amr:reviewer"
	m, files := apitest.CompanySetup()
	var receipts [][]byte // of every write, in order
	receiptOf := func(what string, body []byte) {
		t.Helper()
		var ans struct{ Receipt string }
		if err := json.Unmarshal(body, &ans); err != nil || ans.Receipt == "" {
			t.Fatalf("%s answered without a receipt: %s", what, body)
		}
		receipts = append(receipts, []byte(ans.Receipt))
	}
	code, body := e.Submit(origin, m, files)
	if code != 201 {
		t.Fatalf("submit: %d %s", code, body)
	}
	receiptOf("submit", body)
	var created struct{ ID string }
	json.Unmarshal(body, &created)
	id := created.ID
	act := func(who, action, reason string) { t.Helper(); receiptOf(action, e.Act(who, id, action, reason, 200)) }
	act(dest, "receive", "")
	act(dest, "return", "公司章程缺少股东签字页，请补正")
	articles := apitest.PDF(5000)
	parts := apitest.SubmissionParts(map[string]any{"materials": []apitest.MaterialSpec{{Kind: "articles", Filename: "章程-补正.pdf"}}},
		[]apitest.File{{Kind: "articles", Filename: "章程-补正.pdf", Data: articles}})
	mp, ct := apitest.Multipart(parts)
	if code, body = e.Do("POST", "/v1/packets/"+id+"/supplements", origin, mp, ct); code != 200 {
		t.Fatalf("supplement: %d %s", code, body)
	}
	receiptOf("supplement", body)
	act(dest, "receive", "")
	act(dest, "approve", "材料齐全，准予设立登记")
	licence := apitest.OFD()
	mp, ct = apitest.Multipart([]apitest.Part{{Name: "license", Filename: "营业执照.ofd", Data: licence}})
	if code, body = e.Do("POST", "/v1/packets/"+id+"/license", dest, mp, ct); code != 200 {
		t.Fatalf("licence: %d %s", code, body)
	}
	receiptOf("licence", body)
	act(origin, "deliver", "")

	// The packet view carries each file's SM3 beside its SHA-256.
	want := map[string][]byte{"articles": articles}
	for _, f := range files {
		if f.Kind != "articles" {
			want[f.Kind] = f.Data
		}
	}
	code, body = e.Do("GET", "/v1/packets/"+id, dest, nil, "")
	var view struct {
		Materials []struct{ Kind, SHA256, SM3 string }
		License   struct{ SHA256, SM3 string }
	}
	if err := json.Unmarshal(body, &view); code != 200 || err != nil {
		t.Fatalf("packet: %d %s", code, body)
	}
	for _, mat := range view.Materials {
		if mat.SM3 != hexSM3(want[mat.Kind]) || mat.SHA256 != apitest.SHA256(want[mat.Kind]) {
			t.Fatalf("%s recorded as %+v", mat.Kind, mat)
		}
	}
	if view.License.SM3 != hexSM3(licence) {
		t.Fatalf("licence recorded as %+v", view.License)
	}

	code, zipped := e.Do("GET", "/v1/packets/"+id+"/bundle", dest, nil, "")
	if code != 200 {
		t.Fatalf("bundle: %d %s", code, zipped)
	}
	recs := zipRecs(t, zipped)
	var ledgerSaysSM3 bool
	for _, r := range recs {
		if r.name == bundle.Manifest && !bytes.Contains(r.data, []byte(`"sm3": "`+hexSM3(articles)+`"`)) {
			t.Fatalf("the bundle's manifest lacks the articles' SM3:\n%s", r.data)
		}
		if strings.HasPrefix(r.name, bundle.Entries) && bytes.Contains(r.data, []byte(`"manifest_sm3":"`)) {
			ledgerSaysSM3 = true
		}
	}
	if !ledgerSaysSM3 {
		t.Fatal("no ledger entry in the bundle records the manifest's SM3")
	}

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sm2File := write("sm2.pub", []byte(e.SM2Key+"\n"))
	vkey := e.Ledger.VerifierKey()
	matName := ""
	for _, r := range recs {
		if strings.HasPrefix(r.name, bundle.Materials+"articles/") {
			matName = r.name
		}
	}
	var checkpoint []byte
	for _, r := range recs {
		if r.name == bundle.Checkpoint {
			checkpoint = r.data
		}
	}
	cpText, sigs, _ := strings.Cut(string(checkpoint), "\n\n")
	lines := strings.SplitAfter(strings.TrimSuffix(sigs, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("checkpoint has %d signature lines, want Ed25519 and SM2:\n%s", len(lines), checkpoint)
	}
	withCheckpoint := func(sigLines ...string) []byte {
		return rawZip(nil, recsWith(recs, bundle.Checkpoint, func(r *zrec) {
			r.data = []byte(cpText + "\n\n" + strings.TrimSuffix(strings.Join(sigLines, ""), "\n") + "\n")
		}), "")
	}
	flipLast := func(line string) string { // one bit of the signature's last byte
		line = strings.TrimSuffix(line, "\n")
		i := strings.LastIndex(line, " ")
		raw, _ := base64.StdEncoding.DecodeString(line[i+1:])
		raw[len(raw)-1] ^= 1
		return line[:i+1] + base64.StdEncoding.EncodeToString(raw) + "\n"
	}
	otherPriv, _, err := gmnote.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := gmnote.NewSigner("tongban.yrd/ledger", otherPriv)
	elsewhere, _ := gmnote.NewSigner("elsewhere.example", otherPriv) // a key named for another log
	elsewhereFile := write("elsewhere.pub", []byte(elsewhere.VerifierKey()+"\n"))

	// A standard-profile gateway's bundle, for --sm2-key against it.
	std := apitest.New(t, apitest.Options{})
	sid := std.MustSubmit(origin, m, files)
	_, stdZip := std.Do("GET", "/v1/packets/"+sid+"/bundle", dest, nil, "")

	for _, c := range []struct {
		name    string
		zip     []byte
		key     string // the log key (default: the gm gateway's)
		sm2     string // --sm2-key, if any
		code    int
		culprit []string
	}{
		{"both families", zipped, "", sm2File, 0, []string{"INTACT", "signature (SM2)", "sm3 " + hexSM3(articles) + " match the ledger", "sm3 " + hexSM3(licence)}},
		{"old verifier, no --sm2-key", zipped, "", "", 0, []string{"INTACT", "sha256 " + apitest.SHA256(articles) + " and sm3"}},
		{"flipped byte", rawZip(nil, recsWith(recs, matName, func(r *zrec) {
			r.data = bytes.Clone(r.data)
			r.data[len(r.data)/2] ^= 0x20
		}), ""), "", sm2File, 1, []string{"ALTERED", matName, "caught by both digests", "the ledger recorded " + hexSM3(articles)}},
		{"SM2 line missing", withCheckpoint(lines[0]), "", sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature by the key given"}},
		{"SM2 line missing, old verifier", withCheckpoint(lines[0]), "", "", 0, []string{"INTACT"}},
		{"SM2 key of another", zipped, "", other.VerifierKey(), 3, []string{"UNVERIFIABLE", "no SM2 signature by the key given"}},
		{"SM2 line of another key", withCheckpoint(lines[0], mustSignLine(t, other, cpText)), "", sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature"}},
		{"SM2 line altered", withCheckpoint(lines[0], flipLast(lines[1])), "", sm2File, 1, []string{"ALTERED", "signature"}},
		{"only the SM2 line", withCheckpoint(lines[1]), "", sm2File, 3, []string{"UNVERIFIABLE", "no signature by the log key given"}},
		{"SM2 key named for another log", withCheckpoint(lines[0], mustSignLine(t, elsewhere, cpText)), "", elsewhereFile, 3, []string{"UNVERIFIABLE", `the SM2 key given is "elsewhere.example"'s`}},
		{"standard bundle, --sm2-key", stdZip, std.Ledger.VerifierKey(), sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := c.key
			if key == "" {
				key = vkey
			}
			args := []string{"verify", write(strings.ReplaceAll(c.name, " ", "_")+".zip", c.zip), "--log-key", key}
			if c.sm2 != "" {
				args = append(args, "--sm2-key", c.sm2)
			}
			code, stdout, stderr := tongban(t, nil, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			for _, s := range c.culprit {
				if !strings.Contains(stdout+stderr, s) {
					t.Fatalf("output lacks %q:\n%s%s", s, stdout, stderr)
				}
			}
		})
	}

	// Every receipt of the story verifies with both families required.
	if len(receipts) != 8 {
		t.Fatalf("%d receipts, want one for each of the story's 8 writes", len(receipts))
	}
	for i, r := range receipts {
		code, stdout, stderr := tongban(t, nil, "receipt", "verify", write(fmt.Sprint("receipt-", i), r),
			"--log-key", vkey, "--sm2-key", sm2File, "--packet", id)
		if code != 0 || !strings.Contains(stdout, "INTACT") || !strings.Contains(stdout, "SM2 line by "+e.Ledger.Origin()) {
			t.Fatalf("receipt %d: exit %d\n%s%s", i, code, stdout, stderr)
		}
	}
	// The licence's receipt, tampered with; a standard gateway's receipt.
	last, err := format.ParseReceipt(receipts[6])
	if err != nil {
		t.Fatal(err)
	}
	rText, rSigs, _ := strings.Cut(string(last.Checkpoint), "\n\n")
	rLines := strings.SplitAfter(rSigs, "\n")
	rLines = rLines[:len(rLines)-1] // after the last newline: nothing
	if len(rLines) != 2 {
		t.Fatalf("the receipt's checkpoint has %d signature lines, want Ed25519 and SM2:\n%s", len(rLines), last.Checkpoint)
	}
	receiptWith := func(f func(r *format.Receipt)) []byte {
		c := last
		c.Extra, c.Hashes = bytes.Clone(last.Extra), append([]format.Hash(nil), last.Hashes...)
		f(&c)
		return c.Marshal()
	}
	withSigs := func(sigLines ...string) []byte {
		return receiptWith(func(r *format.Receipt) { r.Checkpoint = []byte(rText + "\n\n" + strings.Join(sigLines, "")) })
	}
	_, stdAnswer := std.Do("GET", "/v1/packets/"+sid, origin, nil, "")
	var stdSeq struct {
		LastSeq int64 `json:"last_seq"`
	}
	json.Unmarshal(stdAnswer, &stdSeq)
	code, stdReceipt := std.Do("GET", fmt.Sprintf("/v1/packets/%s/receipts/%d", sid, stdSeq.LastSeq), origin, nil, "")
	if code != 200 {
		t.Fatalf("standard receipt: %d %s", code, stdReceipt)
	}
	for _, c := range []struct {
		name    string
		receipt []byte
		key     string // the log key (default: the gm gateway's)
		sm2     string // --sm2-key, if any
		code    int
		want    []string
	}{
		{"receipt, old verifier", receipts[6], "", "", 0, []string{"INTACT", "license.issued"}},
		{"receipt, the entry's recorded SM3 altered", receiptWith(func(r *format.Receipt) {
			r.Extra = bytes.Replace(r.Extra, []byte(hexSM3(licence)), []byte(hexSM3(articles)), 1)
		}), "", sm2File, 1, []string{"ALTERED", "inclusion proof"}},
		{"receipt, SM2 line missing", withSigs(rLines[0]), "", sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature by the key given"}},
		{"receipt, SM2 line missing, old verifier", withSigs(rLines[0]), "", "", 0, []string{"INTACT"}},
		{"receipt, SM2 key of another", receipts[6], "", other.VerifierKey(), 3, []string{"UNVERIFIABLE", "no SM2 signature by the key given"}},
		{"receipt, SM2 line of another key", withSigs(rLines[0], mustSignLine(t, other, rText)), "", sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature"}},
		{"receipt, SM2 line altered", withSigs(rLines[0], flipLast(rLines[1])), "", sm2File, 1, []string{"ALTERED", "checkpoint signature"}},
		{"receipt, Ed25519 line altered", withSigs(flipLast(rLines[0]), rLines[1]), "", sm2File, 1, []string{"ALTERED", "checkpoint signature"}},
		{"receipt, only the SM2 line", withSigs(rLines[1]), "", sm2File, 3, []string{"UNVERIFIABLE", "no signature by the log key given"}},
		{"standard receipt, --sm2-key", stdReceipt, std.Ledger.VerifierKey(), sm2File, 3, []string{"UNVERIFIABLE", "no SM2 signature"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := c.key
			if key == "" {
				key = vkey
			}
			args := []string{"receipt", "verify", write(strings.ReplaceAll(c.name, " ", "_")+".tlog-proof", c.receipt), "--log-key", key}
			if c.sm2 != "" {
				args = append(args, "--sm2-key", c.sm2)
			}
			code, stdout, stderr := tongban(t, nil, args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			for _, s := range c.want {
				if !strings.Contains(stdout+stderr, s) {
					t.Fatalf("output lacks %q:\n%s%s", s, stdout, stderr)
				}
			}
		})
	}

	// fetch --verify with both keys, from the running gateway.
	code, stdout, stderr := tongban(t, []string{"TONGBAN_TOKEN=" + e.Tokens[dest]}, "fetch", id, "--server", e.URL,
		"-o", filepath.Join(dir, "fetched.zip"), "--verify", "--log-key", vkey, "--sm2-key", sm2File)
	if code != 0 || !strings.Contains(stdout, "signature (SM2)") {
		t.Fatalf("fetch --verify --sm2-key: exit %d\n%s%s", code, stdout, stderr)
	}

	// A mirror that requires the SM2 line follows the log; with another
	// SM2 key it takes nothing.
	mirror := func(dir, sm2 string) (int, string) {
		code, stdout, stderr := tongban(t, []string{"TONGBAN_TOKEN=" + e.Tokens[dest]}, "mirror", "--server", e.URL,
			"--log-key", vkey, "--sm2-key", sm2, "--dir", dir)
		return code, stdout + stderr
	}
	if code, out := mirror(filepath.Join(dir, "m1"), sm2File); code != 0 || !strings.Contains(out, "verified entries") {
		t.Fatalf("mirror --sm2-key: exit %d\n%s", code, out)
	}
	if code, out := mirror(filepath.Join(dir, "m2"), other.VerifierKey()); code != 3 || !strings.Contains(out, "no SM2 signature by the key given") {
		t.Fatalf("mirror --sm2-key of another key: exit %d\n%s", code, out)
	}
}

// mustSignLine is the signature line s makes over text.
func mustSignLine(t *testing.T, s *gmnote.Signer, text string) string {
	t.Helper()
	sig, err := s.Sign([]byte(text + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	var id [4]byte
	h := s.KeyHash()
	id[0], id[1], id[2], id[3] = byte(h>>24), byte(h>>16), byte(h>>8), byte(h)
	return "— " + s.Name() + " " + base64.StdEncoding.EncodeToString(append(id[:], sig...)) + "\n"
}
