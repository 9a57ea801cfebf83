package filetype

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// Caps of the OFD check. OFD.xml is a small index; the total bounds the
// work per upload and what a later reader of the archive would unpack.
const (
	maxOFDXML   = 1 << 20  // decompressed OFD.xml
	maxInflated = 64 << 20 // sum of all entries' uncompressed sizes
)

// OFDChecker decides whether a stream is an OFD document (GB/T 33190-2016):
// a ZIP whose root holds OFD.xml with root element OFD in any namespace.
//
// It is an io.WriteCloser to be fed the whole file as it streams past (for
// example through an io.MultiWriter next to storage), so the file is never
// held whole. It walks the local file headers: entries of known size are
// skipped unread, OFD.xml is decompressed and parsed, entries with a data
// descriptor are decompressed only to find their end. The walk stops at the
// central directory.
//
// Once the walker has its verdict, Write returns the verdict error if the
// file is rejected (stop uploading), and otherwise accepts and discards the
// rest. Close must always be called: it ends the walker and returns the
// verdict, nil only for an OFD; every other result wraps ErrNotOFD or
// ErrZipBomb. An OFDChecker is not safe for concurrent use.
type OFDChecker struct {
	pw   *io.PipeWriter
	done chan struct{} // closed once err is set
	err  error
}

// errCheckerDone unblocks a Write when the walker stops reading.
var errCheckerDone = errors.New("ofd checker: verdict reached")

// NewOFDChecker starts a checker; its goroutine ends at Close.
func NewOFDChecker() *OFDChecker {
	pr, pw := io.Pipe()
	c := &OFDChecker{pw: pw, done: make(chan struct{})}
	go func() {
		c.err = checkOFD(bufio.NewReaderSize(pr, 32<<10))
		pr.CloseWithError(errCheckerDone)
		close(c.done)
	}()
	return c
}

// checkOFD runs the walker, turning a panic on hostile input into a
// rejection instead of taking the whole gateway down.
func checkOFD(r *bufio.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: internal error: %v", ErrNotOFD, p)
		}
	}()
	return (&zipWalker{r: r}).walk()
}

// Write feeds the next bytes of the file.
func (c *OFDChecker) Write(p []byte) (int, error) {
	select {
	case <-c.done:
	default:
		n, err := c.pw.Write(p)
		if err == nil {
			return n, nil
		}
		<-c.done // the walker stopped reading: it has its verdict
	}
	if c.err != nil {
		return 0, c.err
	}
	return len(p), nil
}

// Close marks the end of the file and returns the verdict. It may be
// called more than once.
func (c *OFDChecker) Close() error {
	c.pw.Close()
	<-c.done
	return c.err
}

// ZIP record signatures and fields (APPNOTE.TXT).
const (
	sigLocal       = 0x04034b50
	sigCentral     = 0x02014b50
	sigEnd         = 0x06054b50
	sigEnd64       = 0x06064b50
	sigDescriptor  = 0x08074b50
	flagEncrypted  = 1 << 0
	flagDescriptor = 1 << 3
	flagStrongEnc  = 1 << 6
	flagMaskedDir  = 1 << 13
	methodStore    = 0
	methodDeflate  = 8
	zip64ExtraID   = 0x0001
	max32          = math.MaxUint32
)

var le = binary.LittleEndian

// zipWalker reads a ZIP archive front to back through its local headers.
type zipWalker struct {
	r        *bufio.Reader
	inflated uint64 // uncompressed bytes so far, declared or measured
	sawOFD   bool   // an entry named OFD.xml was found (and checked)
}

func notOFD(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotOFD}, args...)...)
}

func (w *zipWalker) walk() error {
	for {
		var sig [4]byte
		if _, err := io.ReadFull(w.r, sig[:]); err != nil {
			return notOFD("truncated archive (no central directory)")
		}
		switch le.Uint32(sig[:]) {
		case sigLocal:
			if err := w.entry(); err != nil {
				return err
			}
		case sigCentral, sigEnd, sigEnd64:
			if !w.sawOFD {
				return notOFD("no OFD.xml at the archive root")
			}
			return nil
		default:
			return notOFD("unexpected record % x", sig)
		}
	}
}

// localHeader is the part of a local file header the walker needs.
type localHeader struct {
	name         string
	flags        uint16
	method       uint16
	crc          uint32
	csize, usize uint64
}

func (w *zipWalker) entry() error {
	var b [26]byte
	if _, err := io.ReadFull(w.r, b[:]); err != nil {
		return notOFD("truncated local header")
	}
	h := localHeader{
		flags:  le.Uint16(b[2:]),
		method: le.Uint16(b[4:]),
		crc:    le.Uint32(b[10:]),
		csize:  uint64(le.Uint32(b[14:])),
		usize:  uint64(le.Uint32(b[18:])),
	}
	name := make([]byte, le.Uint16(b[22:]))
	extra := make([]byte, le.Uint16(b[24:]))
	if _, err := io.ReadFull(w.r, name); err != nil {
		return notOFD("truncated local header")
	}
	if _, err := io.ReadFull(w.r, extra); err != nil {
		return notOFD("truncated local header")
	}
	h.name = string(name)
	isOFD := h.name == "OFD.xml"
	switch {
	case h.flags&(flagEncrypted|flagStrongEnc|flagMaskedDir) != 0:
		return notOFD("entry %.64q is encrypted", h.name)
	case isOFD && w.sawOFD:
		return notOFD("more than one OFD.xml")
	case h.flags&flagDescriptor != 0:
		// Sizes follow the data: only a deflate stream shows where it ends.
		if h.method != methodDeflate {
			return notOFD("entry %.64q has a data descriptor with method %d and cannot be walked", h.name, h.method)
		}
		return w.inflateToDescriptor(h, isOFD)
	}
	if h.csize == max32 || h.usize == max32 {
		h.usize, h.csize = zip64Sizes(extra, h.usize, h.csize)
	}
	if h.csize > math.MaxInt64 {
		return notOFD("entry %.64q: impossible size", h.name)
	}
	if err := w.count(h.usize, isOFD); err != nil {
		return err
	}
	if isOFD {
		return w.readOFDXML(h)
	}
	if _, err := io.CopyN(io.Discard, w.r, int64(h.csize)); err != nil {
		return notOFD("truncated entry %.64q", h.name)
	}
	return nil
}

// zip64Sizes reads the sizes that are max32 in the header from a zip64
// extra field; without one the header values stand (and are huge).
func zip64Sizes(extra []byte, usize, csize uint64) (uint64, uint64) {
	for len(extra) >= 4 {
		id, n := le.Uint16(extra), int(le.Uint16(extra[2:]))
		extra = extra[4:]
		if n > len(extra) {
			break
		}
		if id == zip64ExtraID {
			f := extra[:n]
			if usize == max32 && len(f) >= 8 {
				usize, f = le.Uint64(f), f[8:]
			}
			if csize == max32 && len(f) >= 8 {
				csize = le.Uint64(f)
			}
			break
		}
		extra = extra[n:]
	}
	return usize, csize
}

// count adds n uncompressed bytes to the total and enforces the caps.
func (w *zipWalker) count(n uint64, isOFD bool) error {
	if isOFD && n > maxOFDXML {
		return fmt.Errorf("%w: OFD.xml exceeds %d bytes", ErrZipBomb, maxOFDXML)
	}
	if n > maxInflated-w.inflated {
		return fmt.Errorf("%w: more than %d bytes uncompressed", ErrZipBomb, maxInflated)
	}
	w.inflated += n
	return nil
}

// readOFDXML reads an OFD.xml entry of known size and checks its root.
func (w *zipWalker) readOFDXML(h localHeader) error {
	w.sawOFD = true
	lr := &io.LimitedReader{R: w.r, N: int64(h.csize)}
	var src io.Reader
	switch h.method {
	case methodStore:
		if h.csize != h.usize {
			return notOFD("stored OFD.xml with inconsistent sizes")
		}
		src = lr
	case methodDeflate:
		src = flate.NewReader(lr)
	default:
		return notOFD("OFD.xml uses compression method %d", h.method)
	}
	var buf bytes.Buffer
	crc := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(&buf, crc), io.LimitReader(src, int64(h.usize)+1))
	if err != nil {
		return notOFD("OFD.xml: %v", err)
	}
	if _, err := io.Copy(io.Discard, lr); err != nil || lr.N > 0 {
		return notOFD("truncated OFD.xml")
	}
	if uint64(n) != h.usize || crc.Sum32() != h.crc {
		return notOFD("OFD.xml does not match its size or CRC")
	}
	return checkOFDRoot(buf.Bytes())
}

// inflateToDescriptor decompresses an entry whose sizes follow its data,
// counting against the caps, then checks the data descriptor.
func (w *zipWalker) inflateToDescriptor(h localHeader, isOFD bool) error {
	limit := maxInflated - w.inflated
	if isOFD {
		w.sawOFD = true
		limit = min(limit, maxOFDXML)
	}
	cr := &countingReader{r: w.r}
	crc := crc32.NewIEEE()
	var buf bytes.Buffer
	var sink io.Writer = crc
	if isOFD {
		sink = io.MultiWriter(&buf, crc)
	}
	// cr is an io.ByteReader, so flate reads exactly the compressed stream
	// and leaves the descriptor unread.
	n, err := io.CopyN(sink, flate.NewReader(cr), int64(limit)+1)
	if uint64(n) > limit {
		if isOFD {
			return fmt.Errorf("%w: OFD.xml exceeds %d bytes", ErrZipBomb, limit)
		}
		return fmt.Errorf("%w: more than %d bytes uncompressed", ErrZipBomb, maxInflated)
	}
	if err != io.EOF {
		return notOFD("entry %.64q: %v", h.name, err)
	}
	w.inflated += uint64(n)
	if err := w.descriptor(crc.Sum32(), cr.n, uint64(n)); err != nil {
		return notOFD("entry %.64q: %v", h.name, err)
	}
	if isOFD {
		return checkOFDRoot(buf.Bytes())
	}
	return nil
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
	_, err := w.r.Discard(best)
	return err
}

func isRecord(sig uint32) bool {
	return sig == sigLocal || sig == sigCentral || sig == sigEnd || sig == sigEnd64
}

// checkOFDRoot reports whether the document element is OFD, in any namespace.
func checkOFDRoot(doc []byte) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	// OFD.xml may declare GBK or similar; the root name is ASCII either way.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	for {
		tok, err := d.Token()
		if err != nil {
			return notOFD("OFD.xml is not XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "OFD" {
				return notOFD("OFD.xml root element is <%.64s>", se.Name.Local)
			}
			return nil
		}
	}
}

// countingReader counts the bytes flate consumes, for the descriptor check.
type countingReader struct {
	r *bufio.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}
