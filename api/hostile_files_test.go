package api_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"mime"
	"net/http"
	"strings"
	"testing"

	"tongban/api/apitest"
)

// Hostile files over HTTP, on a real S3 server: names that would run as
// programs when the saved file is opened, and ZIPs built to pass as OFD.

// TestHostileFileNames: every stored and served name ends in the extension
// of what the bytes are, and reaches Content-Disposition encoded.
func TestHostileFileNames(t *testing.T) {
	e, _ := s3Env(t)
	m, files := apitest.CompanySetup()
	// Kinds in CompanySetup order; applicant_id is a JPEG, articles an OFD.
	names := []struct{ sent, stored string }{
		{"申请书.hta", "申请书.pdf"},                      // consent_form
		{"任命.pdf.bat", "任命.pdf"},                    // application_form
		{"a.pdf::$DATA", "a.jpg"},                   // applicant_id
		{"id.exe.", "id.pdf"},                       // address_proof
		{"invoice\u2024pdf.exe", "invoice_pdf.ofd"}, // articles
		{"CON", "_CON.pdf"},                         // appointments
	}
	for i, n := range names {
		m.Materials[i].Filename, files[i].Filename = n.sent, n.sent
	}
	id := e.MustSubmit(azOrigin, m, files)
	code, body := e.Do("GET", "/v1/packets/"+id, azDest, nil, "")
	if code != http.StatusOK {
		t.Fatalf("get: %d %s", code, body)
	}
	var p packetResp
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	for i, mat := range p.Materials {
		if want := names[i].stored; mat.Filename != want {
			t.Errorf("%s sent as %q stored as %q, want %q", mat.Kind, names[i].sent, mat.Filename, want)
		}
	}

	for i, f := range files {
		req, _ := http.NewRequest("GET", e.URL+"/v1/packets/"+id+"/materials/"+f.Kind, nil)
		req.Header.Set("Authorization", "Bearer "+e.Tokens[azDest])
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cd := resp.Header.Get("Content-Disposition")
		_, params, err := mime.ParseMediaType(cd)
		if resp.StatusCode != http.StatusOK || err != nil || params["filename"] != names[i].stored {
			t.Errorf("%s: %d, Content-Disposition %q parses to %q, %v; want %q", f.Kind, resp.StatusCode, cd, params["filename"], err, names[i].stored)
		}
		fallback, _, _ := strings.Cut(strings.TrimPrefix(cd, `attachment; filename="`), `"`)
		for _, r := range fallback {
			if r < 0x20 || r >= 0x7f || r == '\\' || r == '%' {
				t.Errorf("%s: the ASCII filename %q holds %q", f.Kind, fallback, r)
			}
		}
		if f.Kind == "consent_form" {
			if want := `attachment; filename="___.pdf"; filename*=UTF-8''%E7%94%B3%E8%AF%B7%E4%B9%A6.pdf`; cd != want {
				t.Errorf("Content-Disposition %q, want %q", cd, want)
			}
		}
	}

	code, body = e.Do("GET", "/v1/packets/"+id+"/bundle", azDest, nil, "")
	if code != http.StatusOK {
		t.Fatalf("bundle: %d", code)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range zr.File {
		seen[f.Name] = true
	}
	for i, f := range files {
		if name := "materials/" + f.Kind + "/" + names[i].stored; !seen[name] {
			t.Errorf("bundle lacks %s", name)
		}
	}
}

// zipOf builds an archive of name, content pairs (deflated).
func zipOf(t *testing.T, pairs ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(pairs); i += 2 {
		w, err := zw.Create(pairs[i])
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(pairs[i+1]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const hostileOFDXML = `<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0"/>`

// onlyLast rewrites an archive's central directory to list only its last
// entry.
func onlyLast(z []byte) []byte {
	le := binary.LittleEndian
	end := len(z) - 22
	cd := int(le.Uint32(z[end+16:]))
	last := cd
	for p := cd; p < end; {
		last = p
		p += 46 + int(le.Uint16(z[p+28:])) + int(le.Uint16(z[p+30:])) + int(le.Uint16(z[p+32:]))
	}
	out := append(append([]byte(nil), z[:cd]...), z[last:end]...)
	eocd := append([]byte(nil), z[end:]...)
	le.PutUint16(eocd[8:], 1)
	le.PutUint16(eocd[10:], 1)
	le.PutUint32(eocd[12:], uint32(end-last))
	return append(out, eocd...)
}

// lyingSizeOFD has an entry that declares 1,000 bytes and inflates to 200 MiB.
func lyingSizeOFD(t *testing.T) []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 200 {
		fw.Write(zeros)
	}
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("OFD.xml")
	w.Write([]byte(hostileOFDXML))
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "Doc_0/Res/image_1.png", Method: zip.Deflate,
		CRC32: crc32.ChecksumIEEE(make([]byte, 1000)), CompressedSize64: uint64(comp.Len()), UncompressedSize64: 1000})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

// TestHostileOFD: each archive is refused with the right status, and the
// refusal leaves no ledger entry and no packet.
func TestHostileOFD(t *testing.T) {
	e, _ := s3Env(t)
	ofd := zipOf(t, "OFD.xml", hostileOFDXML)
	macro := zipOf(t, "[Content_Types].xml", "<Types/>", "word/document.xml", `<w:document xmlns:w="x"/>`,
		"word/vbaProject.bin", "Sub AutoOpen()\nShell \"calc\"\nEnd Sub")
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"an OFD with an office document with macros appended", append(bytes.Clone(ofd), macro...), http.StatusUnsupportedMediaType},
		{"traversal", zipOf(t, "OFD.xml", hostileOFDXML, "../../../../tmp/x.sh", "#!/bin/sh\nid\n"), http.StatusUnsupportedMediaType},
		{"absolute", zipOf(t, "OFD.xml", hostileOFDXML, "/etc/cron.d/x", "* * * * * root sh\n"), http.StatusUnsupportedMediaType},
		{"central directory lists only payload.exe", onlyLast(zipOf(t, "OFD.xml", hostileOFDXML, "payload.exe", "MZ\x90\x00")), http.StatusUnsupportedMediaType},
		{"lying size", lyingSizeOFD(t), http.StatusUnprocessableEntity},
	}
	before := e.Ledger.Size()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, files := apitest.CompanySetup()
			for i := range files {
				if files[i].Kind == "articles" {
					files[i].Data = tt.data
					m.Materials[i].SHA256 = apitest.SHA256(tt.data)
				}
			}
			code, body := e.Submit(azOrigin, m, files)
			if code != tt.want || !strings.Contains(string(body), `"articles"`) {
				t.Errorf("submit: %d %s, want %d naming articles", code, body, tt.want)
			}
		})
	}
	if after := e.Ledger.Size(); after != before {
		t.Errorf("ledger grew from %d to %d entries", before, after)
	}
	code, body := e.Do("GET", "/v1/packets?box=outbox", azOrigin, nil, "")
	if code != http.StatusOK || strings.Contains(string(body), `"id"`) {
		t.Errorf("outbox after refusals: %d %.300s", code, body)
	}
}
