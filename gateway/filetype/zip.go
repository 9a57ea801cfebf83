package filetype

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A ZIP archive can be read two ways: front to back through its local
// headers (as a streaming reader does), or from the central directory at
// the end (as archive/zip, unzip and office suites do). A file that reads
// differently the two ways is how a checker is fooled, so the walker reads
// it front to back and then requires the central directory to describe
// exactly what it saw, and to end the file.
//
// Rules, each a rejection:
//   - the file starts with a local header; local entries follow each other
//     with nothing in between; then the central directory, an optional
//     zip64 end record and locator, the end record, its comment, and EOF;
//   - every central record matches one local entry (name, method, CRC,
//     sizes, offset) and every local entry has one central record;
//   - names are relative, UTF-8, without backslash, colon, control or
//     format characters, empty, "." or ".." segments, and unique ignoring
//     case;
//     no symbolic links;
//   - no encryption; methods store and deflate only;
//   - every entry is inflated and its CRC checked; an entry that inflates
//     beyond its declared size is refused as soon as it does;
//   - the archive inflates to at most maxInflated bytes in all, and, past
//     ratioFloor, to at most maxRatio times the bytes read so far;
//   - the comment holds no record signature (a second archive hiding in it).

// Caps of the walk.
const (
	maxInflated  = 64 << 20 // sum of all entries' uncompressed sizes
	maxRatio     = 200      // inflated bytes per archive byte read, past ratioFloor
	ratioFloor   = 1 << 20
	maxEntries   = 10000
	maxNameBytes = 1024
)

// ZIP record signatures and fields (APPNOTE.TXT).
const (
	sigLocal       = 0x04034b50
	sigCentral     = 0x02014b50
	sigEnd         = 0x06054b50
	sigEnd64       = 0x06064b50
	sigLocator64   = 0x07064b50
	sigDescriptor  = 0x08074b50
	flagEncrypted  = 1 << 0
	flagDescriptor = 1 << 3
	flagStrongEnc  = 1 << 6
	flagMaskedDir  = 1 << 13
	methodStore    = 0
	methodDeflate  = 8
	zip64ExtraID   = 0x0001
	max16          = math.MaxUint16
	max32          = math.MaxUint32
)

var le = binary.LittleEndian

// zipEntry is what the local header and the data of an entry showed.
type zipEntry struct {
	name         string
	method       uint16
	crc          uint32
	csize, usize uint64
	listed       bool // a central record matched it
}

// zipWalker reads a ZIP archive front to back. The entry named keep (if
// any) is inflated into memory, up to keepMax bytes, and passed to kept.
type zipWalker struct {
	r        *bufio.Reader
	off      uint64 // bytes of the archive consumed
	inflated uint64 // uncompressed bytes so far

	keep    string
	keepMax uint64
	kept    func([]byte) error
	sawKept bool

	entries  []zipEntry
	byOffset map[uint64]int    // local header offset -> index in entries
	folded   map[string]string // lower-cased name -> name
}

func notOFD(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotOFD}, args...)...)
}

func tooBig(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrZipBomb}, args...)...)
}

// read fills b from the archive.
func (w *zipWalker) read(b []byte) error {
	n, err := io.ReadFull(w.r, b)
	w.off += uint64(n)
	return err
}

func (w *zipWalker) sig() (uint32, error) {
	var b [4]byte
	if err := w.read(b[:]); err != nil {
		return 0, err
	}
	return le.Uint32(b[:]), nil
}

func (w *zipWalker) walk() error {
	w.byOffset = map[uint64]int{}
	w.folded = map[string]string{}
	for {
		at := w.off
		sig, err := w.sig()
		if err != nil {
			return notOFD("truncated archive (no central directory)")
		}
		switch sig {
		case sigLocal:
			if err := w.local(at); err != nil {
				return err
			}
		case sigCentral:
			if len(w.entries) == 0 {
				return notOFD("no entries")
			}
			return w.central(at)
		case sigEnd:
			return notOFD("no entries")
		default:
			return notOFD("unexpected record % x at offset %d", le.AppendUint32(nil, sig), at)
		}
	}
}

// local reads one local entry whose signature, at offset at, was read.
func (w *zipWalker) local(at uint64) error {
	if len(w.entries) >= maxEntries {
		return notOFD("more than %d entries", maxEntries)
	}
	var b [26]byte
	if err := w.read(b[:]); err != nil {
		return notOFD("truncated local header")
	}
	flags, method := le.Uint16(b[2:]), le.Uint16(b[4:])
	e := zipEntry{method: method, crc: le.Uint32(b[10:]), csize: uint64(le.Uint32(b[14:])), usize: uint64(le.Uint32(b[18:]))}
	name, extra := make([]byte, le.Uint16(b[22:])), make([]byte, le.Uint16(b[24:]))
	if err := w.read(name); err != nil {
		return notOFD("truncated local header")
	}
	if err := w.read(extra); err != nil {
		return notOFD("truncated local header")
	}
	e.name = string(name)
	if err := w.checkName(e.name); err != nil {
		return err
	}
	isKept := e.name == w.keep
	switch {
	case flags&(flagEncrypted|flagStrongEnc|flagMaskedDir) != 0:
		return notOFD("entry %.64q is encrypted", e.name)
	case method != methodStore && method != methodDeflate:
		return notOFD("entry %.64q uses compression method %d", e.name, method)
	case flags&flagDescriptor != 0 && method != methodDeflate:
		// Sizes follow the data: only a deflate stream shows where it ends.
		return notOFD("entry %.64q has a data descriptor with method %d and cannot be walked", e.name, method)
	}
	limit := uint64(math.MaxUint64) // what the entry may inflate to
	if flags&flagDescriptor == 0 {
		if e.csize == max32 || e.usize == max32 {
			e.usize, e.csize, _ = zip64Fields(extra, e.usize, e.csize, 0)
		}
		if isKept && e.usize > w.keepMax {
			return tooBig("%s exceeds %d bytes", w.keep, w.keepMax)
		}
		if e.usize > maxInflated-w.inflated {
			return tooBig("more than %d bytes uncompressed", maxInflated)
		}
		if method == methodStore && e.csize != e.usize {
			return notOFD("stored entry %.64q with inconsistent sizes", e.name)
		}
		limit = e.usize
	}
	var keep *bytes.Buffer
	if isKept {
		keep = new(bytes.Buffer)
	}
	csize, usize, crc, err := w.data(e, flags&flagDescriptor != 0, limit, keep)
	if err != nil {
		return err
	}
	if flags&flagDescriptor != 0 {
		if err := w.descriptor(crc, csize, usize); err != nil {
			return notOFD("entry %.64q: %v", e.name, err)
		}
		e.crc, e.csize, e.usize = crc, csize, usize
	} else if usize != e.usize || crc != e.crc {
		return notOFD("entry %.64q does not match its size or CRC", e.name)
	}
	w.byOffset[at] = len(w.entries)
	w.entries = append(w.entries, e)
	if isKept {
		w.sawKept = true
		return w.kept(keep.Bytes())
	}
	return nil
}

// data reads an entry's data, inflating it if compressed, and returns its
// compressed and uncompressed sizes and CRC. Without a descriptor the data
// is e.csize bytes and must inflate to no more than limit.
func (w *zipWalker) data(e zipEntry, descriptor bool, limit uint64, keep *bytes.Buffer) (csize, usize uint64, crc uint32, err error) {
	src := &entryReader{w: w, n: math.MaxUint64}
	if !descriptor {
		src.n = e.csize
	}
	sink := &inflateSink{w: w, name: e.name, limit: limit, keep: keep, keepMax: w.keepMax, crc: crc32.NewIEEE()}
	var r io.Reader = src
	if e.method == methodDeflate {
		// src is an io.ByteReader, so flate reads exactly the compressed
		// stream and nothing past it.
		r = flate.NewReader(src)
	}
	start := w.off
	if _, err := io.Copy(sink, r); err != nil {
		if errors.Is(err, ErrZipBomb) || errors.Is(err, ErrNotOFD) {
			return 0, 0, 0, err
		}
		return 0, 0, 0, notOFD("entry %.64q: %v", e.name, err)
	}
	if !descriptor && src.n != 0 {
		return 0, 0, 0, notOFD("entry %.64q: compressed data ends %d bytes before the entry does", e.name, src.n)
	}
	return w.off - start, sink.n, sink.crc.Sum32(), nil
}

// entryReader reads at most n bytes of the archive; it is an io.ByteReader
// so that flate does not read ahead.
type entryReader struct {
	w *zipWalker
	n uint64
}

func (r *entryReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	if uint64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.w.r.Read(p)
	r.n -= uint64(n)
	r.w.off += uint64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (r *entryReader) ReadByte() (byte, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	b, err := r.w.r.ReadByte()
	if err != nil {
		return 0, io.ErrUnexpectedEOF
	}
	r.n--
	r.w.off++
	return b, nil
}

// inflateSink takes an entry's uncompressed bytes and enforces the caps
// as they arrive, so that a bomb is stopped, not inflated.
type inflateSink struct {
	w       *zipWalker
	name    string
	limit   uint64
	n       uint64
	keep    *bytes.Buffer
	keepMax uint64
	crc     hash.Hash32
}

func (s *inflateSink) Write(p []byte) (int, error) {
	s.n += uint64(len(p))
	s.w.inflated += uint64(len(p))
	switch w := s.w; {
	case s.n > s.limit:
		return 0, tooBig("entry %.64q inflates beyond its declared %d bytes", s.name, s.limit)
	case s.keep != nil && s.n > s.keepMax:
		return 0, tooBig("%s exceeds %d bytes", w.keep, s.keepMax)
	case w.inflated > maxInflated:
		return 0, tooBig("more than %d bytes uncompressed", maxInflated)
	case w.inflated > ratioFloor && w.inflated/max(w.off, 1) > maxRatio:
		return 0, tooBig("inflates more than %d times its size", maxRatio)
	}
	s.crc.Write(p)
	if s.keep != nil {
		s.keep.Write(p)
	}
	return len(p), nil
}

// checkName refuses entry names that would land outside the directory an
// archive is unpacked into, or that another entry already has.
func (w *zipWalker) checkName(name string) error {
	switch {
	case name == "":
		return notOFD("an entry has an empty name")
	case len(name) > maxNameBytes:
		return notOFD("an entry name is longer than %d bytes", maxNameBytes)
	case !utf8.ValidString(name):
		return notOFD("entry name %.64q is not UTF-8", name)
	case strings.ContainsRune(name, '\\'):
		return notOFD("entry name %.64q contains a backslash", name)
	case name[0] == '/' || strings.ContainsRune(name, ':'):
		return notOFD("entry name %.64q is absolute or names a drive or stream", name)
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }):
		return notOFD("entry name %.64q contains control or invisible formatting characters", name)
	}
	for seg := range strings.SplitSeq(strings.TrimSuffix(name, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return notOFD("entry name %.64q reaches outside the archive or has empty segments", name)
		}
	}
	key := strings.ToLower(strings.TrimSuffix(name, "/"))
	if prev, dup := w.folded[key]; dup {
		return notOFD("entry name %.64q appears twice (as %.64q)", name, prev)
	}
	w.folded[key] = name
	return nil
}

// zip64Fields reads the values that are max32 in a header from a zip64
// extra field, in its fixed order; without one the header values stand.
func zip64Fields(extra []byte, usize, csize, offset uint64) (uint64, uint64, uint64) {
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			break
		}
		if id == zip64ExtraID {
			f := extra[:n]
			for _, v := range []*uint64{&usize, &csize, &offset} {
				if *v == max32 && len(f) >= 8 {
					*v, f = le.Uint64(f), f[8:]
				}
			}
			break
		}
		extra = extra[n:]
	}
	return usize, csize, offset
}

// descriptor consumes the data descriptor that must match the entry just
// read. It comes with or without a signature, with 4- or 8-byte sizes; a
// form followed by another record's signature is preferred.
func (w *zipWalker) descriptor(crc uint32, csize, usize uint64) error {
	p, _ := w.r.Peek(28)
	best := 0
	for _, form := range [4]struct{ sig, wide bool }{{true, false}, {true, true}, {false, false}, {false, true}} {
		q, off := p, 0
		if form.sig {
			if len(q) < 4 || le.Uint32(q) != sigDescriptor {
				continue
			}
			q, off = q[4:], 4
		}
		var c, u uint64
		size := 12
		if form.wide {
			if size = 20; len(q) < size {
				continue
			}
			c, u = le.Uint64(q[4:]), le.Uint64(q[12:])
		} else {
			if len(q) < size {
				continue
			}
			c, u = uint64(le.Uint32(q[4:])), uint64(le.Uint32(q[8:]))
		}
		if le.Uint32(q) != crc || c != csize || u != usize {
			continue
		}
		end := off + size
		if best == 0 {
			best = end
		}
		if len(p) >= end+4 && isRecord(le.Uint32(p[end:])) {
			best = end
			break
		}
	}
	if best == 0 {
		return errors.New("data descriptor missing or does not match")
	}
	n, err := w.r.Discard(best)
	w.off += uint64(n)
	return err
}

func isRecord(sig uint32) bool {
	return sig == sigLocal || sig == sigCentral || sig == sigEnd || sig == sigEnd64
}

// central reads the central directory, whose first signature, at offset
// start, was read, and everything after it to the end of the file.
func (w *zipWalker) central(start uint64) error {
	n := uint64(0)
	sig := uint32(sigCentral)
	for sig == sigCentral {
		if err := w.centralRecord(); err != nil {
			return err
		}
		n++
		var err error
		if sig, err = w.sig(); err != nil {
			return notOFD("truncated central directory")
		}
	}
	for _, e := range w.entries {
		if !e.listed {
			return notOFD("the central directory does not list entry %.64q", e.name)
		}
	}
	size := w.off - 4 - start
	var end64 *[3]uint64 // entries, size and offset of the zip64 end record
	if sig == sigEnd64 {
		var err error
		if end64, err = w.end64(start + size); err != nil {
			return err
		}
		if sig, err = w.sig(); err != nil || sig != sigEnd {
			return notOFD("no end record after the zip64 locator")
		}
	}
	if sig != sigEnd {
		return notOFD("unexpected record % x after the central directory", le.AppendUint32(nil, sig))
	}
	var b [18]byte
	if err := w.read(b[:]); err != nil {
		return notOFD("truncated end record")
	}
	count, cdSize, cdOffset := uint64(le.Uint16(b[6:])), uint64(le.Uint32(b[8:])), uint64(le.Uint32(b[12:]))
	if end64 != nil {
		count, cdSize, cdOffset = fill(count, max16, end64[0]), fill(cdSize, max32, end64[1]), fill(cdOffset, max32, end64[2])
	}
	switch {
	case le.Uint16(b[0:]) != 0 || le.Uint16(b[2:]) != 0 || le.Uint16(b[4:]) != le.Uint16(b[6:]):
		return notOFD("a multi-disk archive")
	case count != n || cdSize != size || cdOffset != start:
		return notOFD("the end record does not describe the central directory (%d entries, %d bytes at %d; found %d, %d at %d)",
			count, cdSize, cdOffset, n, size, start)
	}
	comment := make([]byte, le.Uint16(b[16:]))
	if err := w.read(comment); err != nil {
		return notOFD("truncated archive comment")
	}
	for _, s := range []uint32{sigLocal, sigCentral, sigEnd, sigEnd64, sigLocator64} {
		if bytes.Contains(comment, le.AppendUint32(nil, s)) {
			return notOFD("the archive comment holds a ZIP record signature")
		}
	}
	if _, err := w.r.ReadByte(); err != io.EOF {
		return notOFD("data after the end of the archive (at offset %d)", w.off)
	}
	return nil
}

// fill returns big if v is the marker that says the zip64 record holds it.
func fill(v, marker, big uint64) uint64 {
	if v == marker {
		return big
	}
	return v
}

// centralRecord reads one central directory record and matches it to the
// local entry at its offset.
func (w *zipWalker) centralRecord() error {
	var b [42]byte
	if err := w.read(b[:]); err != nil {
		return notOFD("truncated central directory")
	}
	flags, method := le.Uint16(b[4:]), le.Uint16(b[6:])
	crc, csize, usize := le.Uint32(b[12:]), uint64(le.Uint32(b[16:])), uint64(le.Uint32(b[20:]))
	name := make([]byte, le.Uint16(b[24:]))
	extra := make([]byte, le.Uint16(b[26:]))
	comment := make([]byte, le.Uint16(b[28:]))
	disk, attrs, offset := le.Uint16(b[30:]), le.Uint32(b[34:]), uint64(le.Uint32(b[38:]))
	for _, f := range [][]byte{name, extra, comment} {
		if err := w.read(f); err != nil {
			return notOFD("truncated central directory")
		}
	}
	usize, csize, offset = zip64Fields(extra, usize, csize, offset)
	i, ok := w.byOffset[offset]
	if !ok || disk != 0 {
		return notOFD("the central directory lists %.64q at offset %d, where no entry starts", name, offset)
	}
	e := &w.entries[i]
	switch {
	case e.listed:
		return notOFD("the central directory lists entry %.64q twice", e.name)
	case string(name) != e.name:
		return notOFD("the central directory names the entry %.64q %.64q", e.name, name)
	case method != e.method || crc != e.crc || csize != e.csize || usize != e.usize:
		return notOFD("the central directory disagrees with the local header of %.64q", e.name)
	case flags&(flagEncrypted|flagStrongEnc|flagMaskedDir) != 0:
		return notOFD("entry %.64q is encrypted", e.name)
	case attrs>>16&0o170000 == 0o120000:
		return notOFD("entry %.64q is a symbolic link", e.name)
	}
	e.listed = true
	return nil
}

// end64 reads a zip64 end record, whose signature was read at offset at,
// and its locator, returning the record's entry count, directory size and
// offset.
func (w *zipWalker) end64(at uint64) (*[3]uint64, error) {
	var b [52]byte
	if err := w.read(b[:]); err != nil {
		return nil, notOFD("truncated zip64 end record")
	}
	rest := le.Uint64(b[0:])
	if rest < 44 || rest > 1<<16 {
		return nil, notOFD("zip64 end record of impossible size")
	}
	if le.Uint32(b[12:]) != 0 || le.Uint32(b[16:]) != 0 || le.Uint64(b[20:]) != le.Uint64(b[28:]) {
		return nil, notOFD("a multi-disk archive")
	}
	vals := [3]uint64{le.Uint64(b[28:]), le.Uint64(b[36:]), le.Uint64(b[44:])}
	if _, err := io.CopyN(io.Discard, &entryReader{w: w, n: rest - 44}, int64(rest-44)); err != nil {
		return nil, notOFD("truncated zip64 end record")
	}
	var loc [20]byte
	if err := w.read(loc[:]); err != nil || le.Uint32(loc[0:]) != sigLocator64 {
		return nil, notOFD("no zip64 end locator")
	}
	if le.Uint32(loc[4:]) != 0 || le.Uint64(loc[8:]) != at || le.Uint32(loc[16:]) > 1 {
		return nil, notOFD("the zip64 end locator does not point at the zip64 end record")
	}
	return &vals, nil
}
