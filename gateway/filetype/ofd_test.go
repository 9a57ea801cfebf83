package filetype

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const ofdXML = `<?xml version="1.0" encoding="UTF-8"?>
<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" Version="1.0" DocType="OFD">
  <ofd:DocBody><ofd:DocInfo><ofd:DocID>a1b2c3</ofd:DocID></ofd:DocInfo>
  <ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody>
</ofd:OFD>`

// entry describes one file of a test archive. raw entries are written with
// known sizes in the local header; the others, like archive/zip's Create,
// with a data descriptor after the data.
type entry struct {
	name   string
	data   []byte
	method uint16
	raw    bool
	flags  uint16
}

func buildZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		if !e.raw {
			w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: e.method, Flags: e.flags})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		comp := e.data
		if e.method == zip.Deflate {
			comp = deflate(t, e.data)
		}
		w, err := zw.CreateRaw(&zip.FileHeader{
			Name: e.name, Method: e.method, Flags: e.flags, CRC32: crc32.ChecksumIEEE(e.data),
			CompressedSize64: uint64(len(comp)), UncompressedSize64: uint64(len(e.data)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(comp); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func deflate(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestCompression)
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// check feeds data to a new OFDChecker in random chunks, as an upload would,
// and returns Close's verdict. A Write error must be the verdict.
func check(t testing.TB, data []byte, rng *rand.Rand) error {
	t.Helper()
	c := NewOFDChecker()
	var werr error
	for len(data) > 0 && werr == nil {
		n := min(len(data), 1+rng.IntN(4096))
		if rng.IntN(8) == 0 {
			n = min(len(data), 1)
		}
		var m int
		m, werr = c.Write(data[:n])
		if werr == nil && m != n {
			t.Fatalf("short write %d of %d without error", m, n)
		}
		data = data[n:]
	}
	err := c.Close()
	if werr != nil && werr != err {
		t.Fatalf("Write error %v is not the verdict %v", werr, err)
	}
	if err2 := c.Close(); err2 != err {
		t.Fatalf("second Close = %v, first %v", err2, err)
	}
	return err
}

var (
	jpegish = bytes.Repeat([]byte("\xff\xd8\xff\xe0 incompressible? not quite "), 4000)
	docXML  = []byte(`<?xml version="1.0" encoding="UTF-8"?><ofd:Document xmlns:ofd="http://www.ofdspec.org/2016"/>`)
)

func TestOFDCheckerAccepts(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
	}{
		{"deflate with data descriptor", []entry{{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate}}},
		{"deflate, known size", []entry{{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate, raw: true}}},
		{"store, known size", []entry{{name: "OFD.xml", data: []byte(ofdXML), method: zip.Store, raw: true}}},
		{"no namespace", []entry{{name: "OFD.xml", data: []byte(`<OFD Version="1.1"><DocBody/></OFD>`), method: zip.Deflate}}},
		{"default namespace, GBK, BOM", []entry{{name: "OFD.xml", method: zip.Deflate,
			data: []byte("\ufeff<?xml version=\"1.0\" encoding=\"GBK\"?><!-- c --><OFD xmlns=\"http://www.ofdspec.org/2016\"/>")}}},
		{"typical layout", []entry{
			{name: "Doc_0/", method: zip.Store},
			{name: "Doc_0/Document.xml", data: docXML, method: zip.Deflate},
			{name: "Doc_0/Res/image_1.jpg", data: jpegish, method: zip.Store, raw: true},
			{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate},
			{name: "Doc_0/Signs/Signatures.xml", data: docXML, method: zip.Deflate, raw: true},
			{name: "Doc_0/Pages/Page_0/Content.xml", data: bytes.Repeat(docXML, 1000), method: zip.Deflate},
		}},
		{"empty entry before", []entry{
			{name: "empty.txt", method: zip.Deflate},
			{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate},
		}},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z := buildZip(t, tt.entries...)
			if typ, err := DetectHead(z[:min(len(z), 512)]); typ != ZIP {
				t.Fatalf("DetectHead = %q, %v", typ, err)
			}
			for range 20 {
				if err := check(t, z, rng); err != nil {
					t.Fatalf("rejected: %v", err)
				}
			}
		})
	}
}

func TestOFDCheckerRejects(t *testing.T) {
	ofd := entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate}
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"docx", buildZip(t,
			entry{name: "[Content_Types].xml", data: []byte(`<?xml version="1.0"?><Types/>`), method: zip.Deflate},
			entry{name: "_rels/.rels", data: []byte(`<Relationships/>`), method: zip.Deflate},
			entry{name: "word/document.xml", data: []byte(`<w:document xmlns:w="x"/>`), method: zip.Deflate},
		), ErrNotOFD, "no OFD.xml"},
		{"html root", buildZip(t, entry{name: "OFD.xml", data: []byte(`<html><body>OFD</body></html>`), method: zip.Deflate}), ErrNotOFD, "<html>"},
		{"not xml", buildZip(t, entry{name: "OFD.xml", data: []byte(`OFD`), method: zip.Store, raw: true}), ErrNotOFD, "not XML"},
		{"empty OFD.xml", buildZip(t, entry{name: "OFD.xml", method: zip.Deflate}), ErrNotOFD, "not XML"},
		{"nested OFD.xml", buildZip(t, entry{name: "Doc_0/OFD.xml", data: []byte(ofdXML), method: zip.Deflate}), ErrNotOFD, "no OFD.xml"},
		{"lower case", buildZip(t, entry{name: "ofd.xml", data: []byte(ofdXML), method: zip.Deflate}), ErrNotOFD, "no OFD.xml"},
		{"leading slash", buildZip(t, entry{name: "/OFD.xml", data: []byte(ofdXML), method: zip.Deflate}), ErrNotOFD, "absolute"},
		{"two OFD.xml", buildZip(t, ofd, ofd), ErrNotOFD, "twice"},
		{"store with data descriptor", buildZip(t, entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Store}), ErrNotOFD, "cannot be walked"},
		{"encrypted", buildZip(t, entry{name: "a.bin", data: []byte("xx"), method: zip.Store, raw: true, flags: 1}, ofd), ErrNotOFD, "encrypted"},
		{"unknown method for OFD.xml", buildZip(t, entry{name: "OFD.xml", data: []byte(ofdXML), method: 12, raw: true}), ErrNotOFD, "method 12"},
		{"empty zip", buildZip(t), ErrNotOFD, "no entries"},
		{"empty input", nil, ErrNotOFD, "truncated"},
		{"text", []byte("hello, world"), ErrNotOFD, "unexpected record"},
		{"pdf polyglot", append([]byte("%PDF-1.7\n"), buildZip(t, ofd)...), ErrNotOFD, "unexpected record"},
		{"huge OFD.xml", buildZip(t, entry{name: "OFD.xml", data: append([]byte("<OFD>"), make([]byte, 2<<20)...), method: zip.Deflate}), ErrZipBomb, "OFD.xml exceeds"},
		{"huge OFD.xml, known size", buildZip(t, entry{name: "OFD.xml", data: append([]byte("<OFD>"), make([]byte, 2<<20)...), method: zip.Deflate, raw: true}), ErrZipBomb, "OFD.xml exceeds"},
		{"declared bomb", declaredBomb(t), ErrZipBomb, "uncompressed"},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.data, rng)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("verdict %v, want %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
}

// declaredBomb claims 2 GiB in a local header, with a tiny body.
func declaredBomb(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "big.bin", Method: zip.Deflate, CompressedSize64: 2, UncompressedSize64: 2 << 30})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{3, 0})
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "OFD.xml", Method: zip.Deflate})
	w.Write([]byte(ofdXML))
	zw.Close()
	return buf.Bytes()
}

var bomb = sync.OnceValue(func() []byte {
	// 80 MiB of zeros deflate to about 80 KiB; the walker must give up at 64 MiB.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "Doc_0/Res/zeros.bin", Method: zip.Deflate})
	zeros := make([]byte, 1<<20)
	for range 80 {
		w.Write(zeros)
	}
	w, _ = zw.CreateHeader(&zip.FileHeader{Name: "OFD.xml", Method: zip.Deflate})
	w.Write([]byte(ofdXML))
	zw.Close()
	return buf.Bytes()
})

func TestOFDCheckerZipBomb(t *testing.T) {
	z := bomb()
	t.Logf("bomb: %d bytes", len(z))
	start := time.Now()
	err := check(t, z, rand.New(rand.NewPCG(5, 6)))
	if !errors.Is(err, ErrZipBomb) {
		t.Fatalf("verdict %v, want ErrZipBomb", err)
	}
	t.Logf("rejected in %v: %v", time.Since(start), err)
}

// TestOFDCheckerStopsEarly: a rejection shows up as a Write error before the
// end of a long upload.
func TestOFDCheckerStopsEarly(t *testing.T) {
	bad := buildZip(t,
		entry{name: "OFD.xml", data: []byte(`<html/>`), method: zip.Deflate},
		entry{name: "big.jpg", data: jpegish, method: zip.Store, raw: true},
	)
	c := NewOFDChecker()
	var werr error
	for i := 0; i < len(bad) && werr == nil; i += 512 {
		_, werr = c.Write(bad[i:min(i+512, len(bad))])
	}
	if !errors.Is(werr, ErrNotOFD) {
		t.Errorf("no Write error before the end: %v", werr)
	}
	if _, err := c.Write([]byte("more")); err != werr {
		t.Errorf("Write after rejection = %v", err)
	}
	if err := c.Close(); err != werr {
		t.Errorf("Close = %v, Write said %v", err, werr)
	}

	// Bytes after the end record are refused: acceptance waits for the end.
	good := buildZip(t, entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate})
	c = NewOFDChecker()
	if n, err := c.Write(good); err != nil || n != len(good) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	junk := make([]byte, 1<<20)
	_, werr = c.Write(junk)
	if err := c.Close(); !errors.Is(err, ErrNotOFD) || werr != nil && werr != err {
		t.Errorf("Close = %v, Write = %v; want data after the end refused", err, werr)
	}
}

func TestOFDCheckerCloseWithoutWrite(t *testing.T) {
	c := NewOFDChecker()
	if err := c.Close(); !errors.Is(err, ErrNotOFD) {
		t.Errorf("Close = %v", err)
	}
}

// TestOFDCheckerTruncated cuts a valid OFD at every byte: all prefixes must
// be rejected.
func TestOFDCheckerTruncated(t *testing.T) {
	for _, z := range [][]byte{
		buildZip(t, entry{name: "Doc_0/Document.xml", data: docXML, method: zip.Deflate},
			entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate}),
		buildZip(t, entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate, raw: true},
			entry{name: "Doc_0/Document.xml", data: docXML, method: zip.Store, raw: true}),
	} {
		rng := rand.New(rand.NewPCG(7, 8))
		for n := 0; n < len(z); n++ {
			if err := check(t, z[:n], rng); !errors.Is(err, ErrNotOFD) {
				t.Fatalf("prefix of %d/%d bytes: %v", n, len(z), err)
			}
		}
		if err := check(t, z, rng); err != nil {
			t.Fatalf("whole: %v", err)
		}
	}
}

// localEntry hand-writes a local header, for layouts archive/zip does not
// produce: zip64 sizes, descriptors without signature or with 8-byte sizes.
func localEntry(name string, flags, method uint16, crc uint32, csize, usize uint32, extra, body []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, sigLocal)
	b = binary.LittleEndian.AppendUint16(b, 45)
	b = binary.LittleEndian.AppendUint16(b, flags)
	b = binary.LittleEndian.AppendUint16(b, method)
	b = binary.LittleEndian.AppendUint32(b, 0) // time, date
	b = binary.LittleEndian.AppendUint32(b, crc)
	b = binary.LittleEndian.AppendUint32(b, csize)
	b = binary.LittleEndian.AppendUint32(b, usize)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(extra)))
	b = append(b, name...)
	b = append(b, extra...)
	return append(b, body...)
}

func descriptorBytes(sig, wide bool, crc uint32, csize, usize uint64) []byte {
	var b []byte
	if sig {
		b = binary.LittleEndian.AppendUint32(b, sigDescriptor)
	}
	b = binary.LittleEndian.AppendUint32(b, crc)
	if wide {
		b = binary.LittleEndian.AppendUint64(b, csize)
		return binary.LittleEndian.AppendUint64(b, usize)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(csize))
	return binary.LittleEndian.AppendUint32(b, uint32(usize))
}

// hand is a hand-written entry: its local record as it is in the archive
// and what its central record says.
type hand struct {
	local        []byte
	name         string
	method       uint16
	crc          uint32
	csize, usize uint64
}

// handZip appends a central directory and an end record (zip64 ones too if
// asked) to hand-written entries.
func handZip(zip64 bool, entries ...hand) []byte {
	le := binary.LittleEndian
	var out, dir []byte
	for _, e := range entries {
		c := le.AppendUint32(nil, sigCentral)
		c = le.AppendUint16(c, 45)
		c = le.AppendUint16(c, 45)
		c = le.AppendUint16(c, 0) // flags
		c = le.AppendUint16(c, e.method)
		c = le.AppendUint32(c, 0) // time, date
		c = le.AppendUint32(c, e.crc)
		c = le.AppendUint32(c, uint32(e.csize))
		c = le.AppendUint32(c, uint32(e.usize))
		c = le.AppendUint16(c, uint16(len(e.name)))
		c = le.AppendUint32(c, 0) // extra, comment
		c = le.AppendUint32(c, 0) // disk, internal attributes
		c = le.AppendUint32(c, 0) // external attributes
		c = le.AppendUint32(c, uint32(len(out)))
		dir = append(dir, append(c, e.name...)...)
		out = append(out, e.local...)
	}
	cd := len(out)
	out = append(out, dir...)
	count, size, offset := uint16(len(entries)), uint32(len(dir)), uint32(cd)
	if zip64 {
		at := len(out)
		out = le.AppendUint32(out, sigEnd64)
		out = le.AppendUint64(out, 44)
		out = le.AppendUint32(out, 45<<16|45)
		out = le.AppendUint64(out, 0) // disks
		out = le.AppendUint64(out, uint64(len(entries)))
		out = le.AppendUint64(out, uint64(len(entries)))
		out = le.AppendUint64(out, uint64(len(dir)))
		out = le.AppendUint64(out, uint64(cd))
		out = le.AppendUint32(out, sigLocator64)
		out = le.AppendUint32(out, 0)
		out = le.AppendUint64(out, uint64(at))
		out = le.AppendUint32(out, 1)
		count, size, offset = 0xffff, 0xffffffff, 0xffffffff
	}
	out = le.AppendUint32(out, sigEnd)
	out = le.AppendUint32(out, 0) // disks
	out = le.AppendUint16(out, count)
	out = le.AppendUint16(out, count)
	out = le.AppendUint32(out, size)
	out = le.AppendUint32(out, offset)
	return le.AppendUint16(out, 0)
}

func TestOFDCheckerHandWritten(t *testing.T) {
	x := []byte(ofdXML)
	xc, xcrc := deflate(t, x), crc32.ChecksumIEEE(x)
	emptyc := deflate(t, nil)
	zip64 := func(u, c uint64) []byte {
		b := binary.LittleEndian.AppendUint16(nil, zip64ExtraID)
		b = binary.LittleEndian.AppendUint16(b, 16)
		b = binary.LittleEndian.AppendUint64(b, u)
		return binary.LittleEndian.AppendUint64(b, c)
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	ofd := func(local ...[]byte) hand {
		return hand{local: cat(local...), name: "OFD.xml", method: 8, crc: xcrc, csize: uint64(len(xc)), usize: uint64(len(x))}
	}
	dd := func(sig, wide bool) hand {
		return ofd(localEntry("OFD.xml", 8, 8, 0, 0, 0, nil, xc), descriptorBytes(sig, wide, xcrc, uint64(len(xc)), uint64(len(x))))
	}
	// An empty deflated entry with an 8-byte-size descriptor also parses as a
	// 4-byte one; only the record that follows tells them apart.
	empty64 := hand{local: cat(localEntry("a", 8, 8, 0, 0, 0, nil, emptyc), descriptorBytes(true, true, 0, uint64(len(emptyc)), 0)),
		name: "a", method: 8, csize: uint64(len(emptyc))}
	good := handZip(false, dd(true, false))
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"descriptor with signature", good, nil},
		{"descriptor without signature", handZip(false, dd(false, false)), nil},
		{"zip64 descriptor", handZip(false, dd(true, true)), nil},
		{"zip64 descriptor without signature", handZip(false, dd(false, true)), nil},
		{"zip64 descriptor of an empty entry", handZip(false, empty64, dd(true, false)), nil},
		{"zip64 end records", handZip(true, dd(true, false)), nil},
		{"zip64 extra sizes", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc, max32, max32, zip64(uint64(len(x)), uint64(len(xc))), xc))), nil},
		{"zip64 marker without extra", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc, max32, max32, nil, xc))), ErrZipBomb},
		{"wrong descriptor", handZip(false, ofd(localEntry("OFD.xml", 8, 8, 0, 0, 0, nil, xc), descriptorBytes(true, false, xcrc+1, uint64(len(xc)), uint64(len(x))))), ErrNotOFD},
		{"missing descriptor", handZip(false, ofd(localEntry("OFD.xml", 8, 8, 0, 0, 0, nil, xc))), ErrNotOFD},
		{"wrong CRC", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc^1, uint32(len(xc)), uint32(len(x)), nil, xc))), ErrNotOFD},
		{"declared size too small", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc, uint32(len(xc)), uint32(len(x)-1), nil, xc))), ErrZipBomb},
		{"declared size too large", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc, uint32(len(xc)), uint32(len(x)+1), nil, xc))), ErrNotOFD},
		{"compressed data shorter than the entry", handZip(false, ofd(localEntry("OFD.xml", 0, 8, xcrc, uint32(len(xc)+3), uint32(len(x)), nil, append(bytes.Clone(xc), 1, 2, 3)))), ErrNotOFD},
		{"stored sizes differ", handZip(false, ofd(localEntry("OFD.xml", 0, 0, xcrc, uint32(len(x)), uint32(len(x)+1), nil, x))), ErrNotOFD},
		{"corrupt deflate", handZip(false, ofd(localEntry("OFD.xml", 8, 8, 0, 0, 0, nil, []byte{0xff, 0xff, 0xff}))), ErrNotOFD},
		{"central size differs", handZip(false, hand{local: dd(true, false).local, name: "OFD.xml", method: 8, crc: xcrc, csize: uint64(len(xc)), usize: 1000}), ErrNotOFD},
		{"bad record", cat(dd(true, false).local, []byte("PK\x09\x09")), ErrNotOFD},
		{"junk between entries", handZip(false, hand{local: cat(empty64.local, []byte("junk"))}, dd(true, false)), ErrNotOFD},
		{"no central directory", dd(true, false).local, ErrNotOFD},
		{"end record cut short", good[:len(good)-1], ErrNotOFD},
		{"one byte more", append(bytes.Clone(good), 0), ErrNotOFD},
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.data, rng)
			if tt.want == nil && err != nil || !errors.Is(err, tt.want) {
				t.Errorf("verdict %v, want %v", err, tt.want)
			}
		})
	}
}

// walkBytes runs the walker directly, so that a panic fails the fuzz test
// instead of being turned into a rejection.
func walkBytes(data []byte) error {
	return walkOFD(bufio.NewReader(bytes.NewReader(data)))
}

func FuzzOFDChecker(f *testing.F) {
	ofd := entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Deflate}
	for _, seed := range [][]byte{
		buildZip(f, ofd),
		buildZip(f, entry{name: "OFD.xml", data: []byte(ofdXML), method: zip.Store, raw: true}),
		buildZip(f, entry{name: "a/", method: zip.Store}, entry{name: "b", data: docXML, method: zip.Deflate, raw: true}, ofd),
		buildZip(f, entry{name: "word/document.xml", data: docXML, method: zip.Deflate}),
		buildZip(f, entry{name: "OFD.xml", data: []byte("<html/>"), method: zip.Deflate}),
		[]byte("%PDF-1.7\n"),
		nil,
	} {
		f.Add(seed, uint16(4096))
		f.Add(seed, uint16(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		direct := walkBytes(data)
		if direct != nil && !errors.Is(direct, ErrNotOFD) && !errors.Is(direct, ErrZipBomb) {
			t.Fatalf("error wraps neither sentinel: %v", direct)
		}
		// Streamed in chunks, the verdict is the same.
		c := NewOFDChecker()
		size := int(chunk)%8192 + 1
		for rest := data; len(rest) > 0; {
			n := min(size, len(rest))
			if _, err := c.Write(rest[:n]); err != nil {
				break
			}
			rest = rest[n:]
		}
		streamed := c.Close()
		if (direct == nil) != (streamed == nil) || errors.Is(direct, ErrZipBomb) != errors.Is(streamed, ErrZipBomb) {
			t.Fatalf("direct %v, streamed %v", direct, streamed)
		}
		if direct == nil {
			agreesWithArchiveZip(t, data)
		}
	})
}

// agreesWithArchiveZip checks an accepted archive with archive/zip, which
// reads from the central directory: it must open, hold OFD.xml, name only
// local paths, and every entry must read back whole.
func agreesWithArchiveZip(t *testing.T, data []byte) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("accepted, but archive/zip refuses it: %v", err)
	}
	sawOFD := false
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) || strings.Contains(f.Name, `\`) {
			t.Fatalf("accepted with entry name %q", f.Name)
		}
		sawOFD = sawOFD || f.Name == "OFD.xml"
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("accepted, but entry %q does not open: %v", f.Name, err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil || uint64(n) != f.UncompressedSize64 {
			t.Fatalf("accepted, but entry %q reads %d bytes, %v", f.Name, n, err)
		}
	}
	if !sawOFD {
		t.Fatal("accepted without an OFD.xml archive/zip can see")
	}
}
