package bundle

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"unicode/utf8"
)

// record is one file of a zip as its central directory and its local header
// both describe it; readZip makes sure they agree.
type record struct {
	name   string
	method uint16
	crc    uint32
	csize  uint64
	usize  uint64
	data   int64 // offset of the first byte of data
}

func (r record) dir() bool { return len(r.name) > 0 && r.name[len(r.name)-1] == '/' }

// errNotZip marks input that is no zip at all: the bundle cannot be judged.
var errNotZip = errors.New("not a zip archive")

// zipFault is a structural fault, named by the record (or "zip") at fault.
type zipFault struct{ target, detail string }

const (
	sigLocal     = 0x04034b50
	sigCentral   = 0x02014b50
	sigEnd       = 0x06054b50
	sigEnd64     = 0x06064b50
	sigLocator64 = 0x07064b50
	endLen       = 22
	centralLen   = 46
	localLen     = 30
	maxNameLen   = 4096
	flagUTF8     = 0x800
	// Flags a canonical record may carry: UTF-8 names and deflate's
	// compression-level hints. Encryption and data descriptors are refused:
	// with a descriptor a stored file's end is ambiguous to a streaming reader.
	allowedFlags = flagUTF8 | 0x6
)

// readZip parses a zip strictly: the end record is the last bytes, with no
// comment; the central directory is followed only by the end records; the
// local records, in offset order, tile the bytes from 0 to the central
// directory exactly; each local header repeats its central record's name,
// flags, method, CRC and sizes. It returns errNotZip when there is no end
// record to start from, and otherwise the records and every fault found.
func readZip(r io.ReaderAt, size int64) ([]record, []zipFault, error) {
	var faults []zipFault
	fault := func(target, f string, a ...any) { faults = append(faults, zipFault{target, fmt.Sprintf(f, a...)}) }
	if size < endLen {
		return nil, nil, errNotZip
	}
	// The end record must be the last 22 bytes; if it is found earlier,
	// the bytes after it are a fault, and the zip is still read.
	tailLen := min(size, endLen+0xffff)
	tail := make([]byte, tailLen)
	if _, err := r.ReadAt(tail, size-tailLen); err != nil {
		return nil, nil, errNotZip
	}
	q := -1
	for i := len(tail) - endLen; i >= 0; i-- {
		if le32(tail[i:]) == sigEnd && int64(len(tail)-i-endLen) >= int64(le16(tail[i+20:])) {
			q = i
			break
		}
	}
	if q < 0 {
		return nil, nil, errNotZip
	}
	end := tail[q : q+endLen]
	endAt := size - tailLen + int64(q) // offset of the end record
	if endAt+endLen != size {
		fault("zip", "%d bytes after the central directory's end record (a comment or appended data) that no file accounts for", size-endAt-endLen)
	}
	count, cdSize, cdOff := uint64(le16(end[10:])), uint64(le32(end[12:])), uint64(le32(end[16:]))
	if le16(end[4:]) != 0 || le16(end[6:]) != 0 || le16(end[8:]) != le16(end[10:]) {
		return nil, append(faults, zipFault{"zip", "a multi-disk archive"}), nil
	}
	cdEnd := uint64(endAt)
	if count == 0xffff || cdSize == 0xffffffff || cdOff == 0xffffffff {
		// Zip64: the locator precedes the end record, the zip64 end
		// record follows the central directory.
		var loc [20]byte
		if endAt < 20 {
			return nil, nil, errNotZip
		}
		if _, err := r.ReadAt(loc[:], endAt-20); err != nil || le32(loc[:]) != sigLocator64 {
			return nil, append(faults, zipFault{"zip", "a zip64 end record without its locator"}), nil
		}
		off := binary.LittleEndian.Uint64(loc[8:])
		var e64 [56]byte
		if off+56 != uint64(endAt-20) {
			return nil, append(faults, zipFault{"zip", "bytes between the zip64 end record and its locator"}), nil
		}
		if _, err := r.ReadAt(e64[:], int64(off)); err != nil || le32(e64[:]) != sigEnd64 || binary.LittleEndian.Uint64(e64[4:]) != 44 {
			return nil, append(faults, zipFault{"zip", "a malformed zip64 end record"}), nil
		}
		count, cdSize, cdOff = binary.LittleEndian.Uint64(e64[32:]), binary.LittleEndian.Uint64(e64[40:]), binary.LittleEndian.Uint64(e64[48:])
		cdEnd = off
	}
	if cdOff > cdEnd || cdEnd-cdOff != cdSize {
		return nil, append(faults, zipFault{"zip", "bytes between the central directory and its end record that no file accounts for"}), nil
	}
	if count > maxFiles {
		return nil, append(faults, zipFault{"zip", fmt.Sprintf("%d files is too many", count)}), nil
	}
	cd := make([]byte, cdSize)
	if _, err := r.ReadAt(cd, int64(cdOff)); err != nil {
		return nil, nil, errNotZip
	}

	type central struct {
		record
		flags uint16
		off   uint64
	}
	var recs []central
	p := cd
	for i := uint64(0); i < count; i++ {
		if len(p) < centralLen || le32(p) != sigCentral {
			return nil, append(faults, zipFault{"zip", "the central directory is malformed"}), nil
		}
		nl, xl, cl := int(le16(p[28:])), int(le16(p[30:])), int(le16(p[32:]))
		if len(p) < centralLen+nl+xl+cl {
			return nil, append(faults, zipFault{"zip", "the central directory is malformed"}), nil
		}
		c := central{record: record{name: string(p[centralLen : centralLen+nl]), method: le16(p[10:]), crc: le32(p[16:]),
			csize: uint64(le32(p[20:])), usize: uint64(le32(p[24:]))}, flags: le16(p[8:]), off: uint64(le32(p[42:]))}
		extra := p[centralLen+nl : centralLen+nl+xl]
		target := c.name
		if cl != 0 {
			fault(target, "carries a file comment")
		}
		// Made on Unix (version made by, high byte 3), the external
		// attributes' high half is the file mode: anything but a regular
		// file or a directory (a symbolic link, a device) would make an
		// extractor write something other than the verified bytes.
		if p[5] == 3 {
			if mode := le32(p[38:]) >> 16; mode != 0 && mode&0o170000 != 0o100000 && mode&0o170000 != 0o040000 {
				fault(target, "is not a regular file (Unix mode %o)", mode)
			}
		}
		if le16(p[34:]) != 0 {
			fault(target, "on another disk")
		}
		if err := readExtra(extra, c.name, []*uint64{&c.usize, &c.csize, &c.off}); err != nil {
			fault(target, "central record: %v", err)
		}
		recs = append(recs, c)
		p = p[centralLen+nl+xl+cl:]
	}
	if len(p) != 0 {
		return nil, append(faults, zipFault{"zip", "bytes inside the central directory that no record accounts for"}), nil
	}

	slices.SortFunc(recs, func(a, b central) int { return cmpU64(a.off, b.off) })
	next := uint64(0)
	out := make([]record, 0, len(recs))
	for _, c := range recs {
		target := c.name
		// Faults are collected and the walk goes on, so that every
		// record at fault is named.
		if c.off != next {
			if c.off < next {
				fault(target, "its local record overlaps the one before it")
			} else {
				fault(target, "%d bytes before its local record that no file accounts for", c.off-next)
			}
		}
		var lh [localLen]byte
		if _, err := r.ReadAt(lh[:], int64(c.off)); err != nil || le32(lh[:]) != sigLocal {
			fault(target, "no local header where the central directory points")
			continue
		}
		nl, xl := int(le16(lh[26:])), int(le16(lh[28:]))
		if nl > maxNameLen {
			fault(target, "a name longer than %d bytes", maxNameLen)
			continue
		}
		nx := make([]byte, nl+xl)
		if _, err := r.ReadAt(nx, int64(c.off)+localLen); err != nil {
			fault(target, "truncated local header")
			continue
		}
		l := record{name: string(nx[:nl]), method: le16(lh[8:]), crc: le32(lh[14:]), csize: uint64(le32(lh[18:])), usize: uint64(le32(lh[22:]))}
		flags := le16(lh[6:])
		if err := readExtra(nx[nl:], l.name, []*uint64{&l.usize, &l.csize}); err != nil {
			fault(target, "local header: %v", err)
		}
		switch {
		case l.name != c.name:
			fault(target, "its local header names it %q: extractors that read local headers would write another file", l.name)
		case flags != c.flags || l.method != c.method || l.crc != c.crc || l.csize != c.csize || l.usize != c.usize:
			fault(target, "its local header differs from the central directory (flags %#x/%#x, method %d/%d, crc %08x/%08x, sizes %d,%d/%d,%d)",
				flags, c.flags, l.method, c.method, l.crc, c.crc, l.csize, l.usize, c.csize, c.usize)
		}
		if c.flags&^allowedFlags != 0 {
			fault(target, "flags %#x: encrypted or with a data descriptor", c.flags)
		}
		// A non-ASCII name without the UTF-8 flag (as zip -r writes it) is
		// accepted: it must still be valid NFC UTF-8, and a tool that reads
		// it in a legacy code page shows another name for the same
		// verified bytes, never a '/' or '.' that is not there.
		if !utf8.ValidString(c.name) {
			fault(target, "a name that is not valid UTF-8")
		}
		if c.method != zip.Store && c.method != zip.Deflate {
			fault(target, "compression method %d; only stored and deflated files are read", c.method)
		}
		c.data = int64(c.off) + localLen + int64(nl) + int64(xl)
		if uint64(c.data) > cdOff || c.csize > cdOff-uint64(c.data) { // no overflow on zip64 sizes
			fault(target, "its data runs into the central directory")
			continue
		}
		next = uint64(c.data) + c.csize
		if next > cdOff {
			fault(target, "its data runs into the central directory")
			continue
		}
		if flags&0x8 != 0 {
			// Skip the data descriptor, so the next record is judged
			// on its own; the flag itself is a fault above.
			var d [4]byte
			next += 16
			if _, err := r.ReadAt(d[:], int64(next-16)); err == nil && le32(d[:]) != 0x08074b50 {
				next -= 4 // a descriptor without its signature
			}
		}
		out = append(out, c.record)
	}
	if next < cdOff {
		fault("zip", "%d bytes between the last file and the central directory that no file accounts for", cdOff-next)
	} else if next > cdOff {
		fault("zip", "the last file runs into the central directory")
	}
	return out, faults, nil
}

// Extra fields a record may carry. Anything else is refused, in particular
// fields that carry another name or other sizes than the ones compared.
const (
	extraZip64   = 0x0001
	extraNTFS    = 0x000a
	extraTime    = 0x5455
	extraUnix    = 0x7875
	extraUniPath = 0x7075
)

// readExtra checks a record's extra fields and applies a zip64 field to
// the 32-bit values that overflowed, in the order the format gives.
func readExtra(b []byte, name string, sizes []*uint64) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errors.New("malformed extra field")
		}
		id, n := le16(b), int(le16(b[2:]))
		if len(b) < 4+n {
			return errors.New("malformed extra field")
		}
		d := b[4 : 4+n]
		switch id {
		case extraZip64:
			for _, s := range sizes {
				if *s != 0xffffffff {
					continue
				}
				if len(d) < 8 {
					return errors.New("malformed zip64 extra field")
				}
				*s, d = binary.LittleEndian.Uint64(d), d[8:]
			}
		case extraNTFS, extraTime, extraUnix:
		case extraUniPath:
			// Unicode path: accepted only when it repeats the name.
			if n < 5 || d[0] != 1 || le32(d[1:]) != crc32.ChecksumIEEE([]byte(name)) || string(d[5:]) != name {
				return errors.New("a Unicode path extra field naming another file")
			}
		default:
			return fmt.Errorf("extra field %#04x, which the verifier does not read", id)
		}
		b = b[4+n:]
	}
	return nil
}

// open returns a record's content, which it checks against the record's
// size and CRC at EOF: a deflated file must end exactly where its
// compressed size says, so no bytes ride along unread.
func (rec record) open(r io.ReaderAt) io.Reader {
	sr := io.NewSectionReader(r, rec.data, int64(rec.csize))
	var src io.Reader = sr
	var cr *countReader
	if rec.method == zip.Deflate {
		cr = &countReader{r: bufio.NewReader(sr)}
		src = flate.NewReader(cr)
	}
	return &checkReader{rec: rec, r: src, cr: cr, crc: crc32.NewIEEE()}
}

type countReader struct {
	r *bufio.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

type checkReader struct {
	rec record
	r   io.Reader
	cr  *countReader
	crc interface {
		io.Writer
		Sum32() uint32
	}
	n int64
}

func (c *checkReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc.Write(p[:n])
	c.n += int64(n)
	if uint64(c.n) > c.rec.usize {
		return n, fmt.Errorf("more than the %d bytes recorded", c.rec.usize)
	}
	if err == io.EOF {
		switch {
		case uint64(c.n) != c.rec.usize:
			return n, fmt.Errorf("%d bytes, the zip records %d", c.n, c.rec.usize)
		case c.cr != nil && uint64(c.cr.n) != c.rec.csize:
			return n, fmt.Errorf("the compressed data ends after %d of its %d bytes", c.cr.n, c.rec.csize)
		case c.crc.Sum32() != c.rec.crc:
			return n, fmt.Errorf("CRC-32 %08x, the zip records %08x", c.crc.Sum32(), c.rec.crc)
		}
	} else if err != nil {
		return n, fmt.Errorf("unreadable: %w", err)
	}
	return n, err
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
