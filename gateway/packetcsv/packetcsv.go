// Package packetcsv writes packet listings as CSV for spreadsheet programs,
// one row per packet. The API's export and the web console's both use it,
// so the two files have the same columns and the same defences.
//
// The file starts with a UTF-8 byte order mark (without it, spreadsheet
// programs set to Chinese read the bytes as GBK), then a header row. Times
// are RFC 3339 in Asia/Shanghai (+08:00). A cell that starts with = + - @,
// a tab or a carriage return gets a leading apostrophe, so that no
// spreadsheet runs a value an applicant or a reviewer typed as a formula.
package packetcsv

import (
	"context"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"

	"tongban/gateway"
	"tongban/gateway/workday"
)

// ContentType is the media type of what a Writer writes.
const ContentType = "text/csv; charset=utf-8"

// Header is the header row. The applicant's name is filled only for the
// packet's origin and destination; the others (auditors) get it empty.
var Header = []string{
	"id", "item", "origin", "destination", "status", "submitted", "deadline", "overdue", "last_seq",
	"updated", "applicant_type", "applicant", "reason",
}

const bom = "\xef\xbb\xbf"

// Writer writes packets as CSV rows, the byte order mark and the header
// before the first row (or at Flush, for a listing of none).
type Writer struct {
	w       io.Writer
	csv     *csv.Writer
	started bool
	err     error
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, csv: csv.NewWriter(w)}
}

func (w *Writer) start() error {
	if w.started || w.err != nil {
		return w.err
	}
	w.started = true
	if _, w.err = io.WriteString(w.w, bom); w.err != nil {
		return w.err
	}
	w.err = w.csv.Write(Header)
	return w.err
}

// Write writes one packet's row; a is its applicant, nil if withheld from
// the reader. Rows are buffered: call Flush.
func (w *Writer) Write(p *gateway.Packet, a *gateway.Applicant) error {
	if err := w.start(); err != nil {
		return err
	}
	name := ""
	if a != nil {
		name = a.Name
	}
	w.err = w.csv.Write(Cells(p.ID, p.Item, p.Origin, p.Destination, p.Status, Time(p.Submitted), Time(p.Deadline),
		strconv.FormatBool(p.Overdue), strconv.FormatInt(p.LastSeq, 10),
		Time(p.Updated), p.ApplicantType, name, p.LastReason))
	return w.err
}

// Flush writes what is buffered (and the header, if no row was written)
// and reports any error of the writes so far.
func (w *Writer) Flush() error {
	if err := w.start(); err != nil {
		return err
	}
	w.csv.Flush()
	w.err = w.csv.Error()
	return w.err
}

// Lister reads one page of a listing: gateway.Gateway.List.
type Lister func(ctx context.Context, who gateway.Principal, q gateway.ListQuery) (*gateway.Page, error)

// Export writes every packet of the listing q to w, first (the page the
// caller has read, so that a refusal could still be an error answer) and
// then a page at a time, calling flush after each page: memory holds one
// page however many packets match. applicant, if not nil, fills a row's
// applicant. An error means the CSV is incomplete: the caller must cut
// the answer short, not end it as if it were whole.
func Export(ctx context.Context, list Lister, who gateway.Principal, q gateway.ListQuery, first *gateway.Page,
	w io.Writer, flush func(), applicant func(*gateway.Packet) (*gateway.Applicant, error)) error {
	cw := NewWriter(w)
	for page := first; ; {
		for _, p := range page.Packets {
			var a *gateway.Applicant
			if applicant != nil {
				var err error
				if a, err = applicant(p); err != nil {
					return err
				}
			}
			if err := cw.Write(p, a); err != nil {
				return err
			}
		}
		if err := cw.Flush(); err != nil {
			return err
		}
		flush()
		if page.NextCursor == "" {
			return nil
		}
		q.Cursor = page.NextCursor
		var err error
		if page, err = list(ctx, who, q); err != nil {
			return err
		}
	}
}

// Time formats t as RFC 3339 in Asia/Shanghai, whole seconds; "" for the
// zero time.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(workday.Shanghai).Format(time.RFC3339)
}

// Cells defuses, in place, the values a spreadsheet would read as a
// formula, and returns them.
func Cells(vs ...string) []string {
	for i, v := range vs {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			vs[i] = "'" + v
		}
	}
	return vs
}
