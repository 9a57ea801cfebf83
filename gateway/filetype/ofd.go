package filetype

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// maxOFDXML caps the decompressed OFD.xml, a small index.
const maxOFDXML = 1 << 20

// OFDChecker decides whether a stream is an OFD document (GB/T 33190-2016):
// a ZIP whose root holds OFD.xml with root element OFD in any namespace.
//
// It is an io.WriteCloser to be fed the whole file as it streams past (for
// example through an io.MultiWriter next to storage), so the file is never
// held whole. The archive must pass the checks of the ZIP walker (see
// zip.go: every entry inflated and checked, the central directory agreeing
// with the local headers and ending the file) and hold exactly one OFD.xml.
//
// Once the walker rejects the file, Write returns the verdict error (stop
// uploading). Acceptance is known only at the end of the file. Close must
// always be called: it ends the walker and returns the verdict, nil only
// for an OFD; every other result wraps ErrNotOFD or ErrZipBomb. An
// OFDChecker is not safe for concurrent use.
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
	return walkOFD(r)
}

// walkOFD checks a whole archive read from r.
func walkOFD(r *bufio.Reader) error {
	w := &zipWalker{r: r, keep: "OFD.xml", keepMax: maxOFDXML, kept: func(doc []byte) error {
		return checkOFDRoot(doc)
	}}
	if err := w.walk(); err != nil {
		return err
	}
	if !w.sawKept {
		return notOFD("no OFD.xml at the archive root")
	}
	return nil
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
