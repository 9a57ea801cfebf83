package filetype

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

// Hostile archives: each is refused although its local headers alone, as
// the walker read them before it checked the central directory, look like
// an OFD.

// macroDoc is an office document with a VBA project, the payload of the
// concatenation attack.
func macroDoc(t testing.TB) []byte {
	return buildZip(t,
		entry{name: "[Content_Types].xml", data: []byte(`<Types/>`), method: zip.Deflate},
		entry{name: "word/document.xml", data: []byte(`<w:document xmlns:w="x"/>`), method: zip.Deflate},
		entry{name: "word/vbaProject.bin", data: []byte("Attribute VB_Name = \"ThisDocument\"\nSub AutoOpen()\nShell \"calc\"\nEnd Sub"), method: zip.Deflate},
	)
}

// centralOffset returns where z's central directory starts, from its end
// record (z has no comment).
func centralOffset(z []byte) int { return int(binary.LittleEndian.Uint32(z[len(z)-6:])) }

// keepCentral rewrites z's central directory to list only the entries
// named in keep, fixing the end record to match.
func keepCentral(t testing.TB, z []byte, keep ...string) []byte {
	t.Helper()
	cd := centralOffset(z)
	end := len(z) - 22
	var dir []byte
	n := 0
	for p := cd; p < end; {
		nameLen := int(binary.LittleEndian.Uint16(z[p+28:]))
		size := 46 + nameLen + int(binary.LittleEndian.Uint16(z[p+30:])) + int(binary.LittleEndian.Uint16(z[p+32:]))
		name := string(z[p+46 : p+46+nameLen])
		for _, k := range keep {
			if k == name {
				dir = append(dir, z[p:p+size]...)
				n++
			}
		}
		p += size
	}
	out := append(append([]byte(nil), z[:cd]...), dir...)
	eocd := append([]byte(nil), z[end:]...)
	binary.LittleEndian.PutUint16(eocd[8:], uint16(n))
	binary.LittleEndian.PutUint16(eocd[10:], uint16(n))
	binary.LittleEndian.PutUint32(eocd[12:], uint32(len(dir)))
	return append(out, eocd...)
}

// lyingBomb is an OFD plus an entry whose headers, local and central, say
// it holds 1,000 bytes, while its deflate stream inflates to 200 MiB.
var lyingBomb = sync.OnceValue(func() []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 200 {
		fw.Write(zeros)
	}
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "OFD.xml", Method: zip.Deflate})
	w.Write([]byte(ofdXML))
	w, _ = zw.CreateRaw(&zip.FileHeader{Name: "Doc_0/Res/image_1.png", Method: zip.Deflate,
		CRC32: crc32.ChecksumIEEE(make([]byte, 1000)), CompressedSize64: uint64(comp.Len()), UncompressedSize64: 1000})
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
})

func TestOFDCheckerHostile(t *testing.T) {
	ofd := entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate}
	doc := entry{name: "Doc_0/Document.xml", data: docXML, method: zip.Deflate}
	payload := entry{name: "payload.exe", data: []byte("MZ\x90\x00 this program cannot be run in DOS mode"), method: zip.Deflate}
	withPayload := buildZip(t, ofd, payload)
	renamed := bytes.Clone(withPayload)
	// The central record of OFD.xml names it OFD.exe: local and central disagree.
	i := bytes.LastIndex(renamed, []byte("OFD.xml"))
	copy(renamed[i:], "OFD.exe")
	commented := append(buildZip(t, ofd)[:len(buildZip(t, ofd))-2], 4, 0, 'P', 'K', 5, 6)
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"two archives concatenated", append(buildZip(t, ofd), macroDoc(t)...), ErrNotOFD, "after the end"},
		{"an archive appended to its comment", func() []byte {
			z := buildZip(t, ofd)
			m := macroDoc(t)
			binary.LittleEndian.PutUint16(z[len(z)-2:], uint16(len(m)))
			return append(z, m...)
		}(), ErrNotOFD, "comment"},
		{"comment hiding an end record", commented, ErrNotOFD, "comment"},
		{"traversal", buildZip(t, ofd, entry{name: "../../../../tmp/x.sh", data: []byte("#!/bin/sh\n"), method: zip.Deflate}), ErrNotOFD, "outside"},
		{"traversal inside", buildZip(t, ofd, entry{name: "Doc_0/../../x.sh", data: []byte("#!/bin/sh\n"), method: zip.Deflate}), ErrNotOFD, "outside"},
		{"absolute", buildZip(t, ofd, entry{name: "/etc/cron.d/x", data: []byte("* * * * * root sh\n"), method: zip.Deflate}), ErrNotOFD, "absolute"},
		{"drive letter", buildZip(t, ofd, entry{name: "C:/Windows/x.bat", data: []byte("x"), method: zip.Deflate}), ErrNotOFD, "absolute"},
		{"backslash", buildZip(t, ofd, entry{name: `Doc_0\..\..\x.bat`, data: []byte("x"), method: zip.Deflate}), ErrNotOFD, "backslash"},
		{"central lists only payload.exe", keepCentral(t, withPayload, "payload.exe"), ErrNotOFD, "central directory"},
		{"central lists only OFD.xml", keepCentral(t, withPayload, "OFD.xml"), ErrNotOFD, "central directory"},
		{"central renames an entry", renamed, ErrNotOFD, "central directory"},
		{"duplicate names", buildZip(t, ofd, doc, doc), ErrNotOFD, "twice"},
		{"duplicate names differing in case", buildZip(t, ofd, doc, entry{name: "doc_0/document.XML", data: docXML, method: zip.Deflate}), ErrNotOFD, "twice"},
		{"encrypted", buildZip(t, ofd, entry{name: "Doc_0/a.bin", data: []byte("xx"), method: zip.Store, raw: true, flags: 1}), ErrNotOFD, "encrypted"},
		{"lying size", lyingBomb(), ErrZipBomb, "declared"},
		{"right-to-left override in a name", buildZip(t, ofd, entry{name: "Doc_0/x\u202egnp.exe", data: []byte("MZ"), method: zip.Deflate}), ErrNotOFD, "formatting"},
		{"symbolic link", symlinkZip(t), ErrNotOFD, "symbolic link"},
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.data, rng)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("verdict %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

// TestOFDCheckerLyingSizeStopsEarly: the lying entry is refused while its
// compressed stream is still arriving, not after inflating all of it.
func TestOFDCheckerLyingSizeStopsEarly(t *testing.T) {
	z := lyingBomb()
	c := NewOFDChecker()
	fed := 0
	var werr error
	for fed < len(z) && werr == nil {
		n := min(4096, len(z)-fed)
		_, werr = c.Write(z[fed : fed+n])
		fed += n
	}
	if err := c.Close(); !errors.Is(err, ErrZipBomb) {
		t.Fatalf("verdict %v", err)
	}
	// The compressed stream is about 200 KiB; a refusal after the first
	// few KiB of it shows the walker did not inflate the rest.
	if werr == nil || fed > len(z)/2 {
		t.Errorf("refused after %d of %d bytes (Write error %v)", fed, len(z), werr)
	}
}

// symlinkZip holds an OFD and a symbolic link pointing out of the archive.
func symlinkZip(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("OFD.xml")
	w.Write([]byte(ofdXML))
	h := &zip.FileHeader{Name: "Doc_0/Res", Method: zip.Deflate}
	h.SetMode(os.ModeSymlink | 0o777)
	w, err := zw.CreateHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("/etc"))
	zw.Close()
	return buf.Bytes()
}
