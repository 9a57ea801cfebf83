package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tongban/gateway"
	"tongban/gateway/packetcsv"
	"tongban/gateway/workday"
	"tongban/ledger"
)

// filter is an auditor's search over packets.
type filter struct {
	Status, Item, Origin, Destination, From, To string
	Overdue                                     bool
}

func filterOf(r *http.Request) filter {
	q := r.URL.Query()
	return filter{Status: q.Get("status"), Item: q.Get("item"), Origin: q.Get("origin"), Destination: q.Get("destination"),
		From: q.Get("from"), To: q.Get("to"), Overdue: q.Get("overdue") == "1"}
}

// day parses a date (Beijing time) of the form 2006-01-02.
func day(s string) (time.Time, bool) {
	t, err := time.ParseInLocation("2006-01-02", s, workday.Shanghai)
	return t, err == nil
}

func (f filter) match(p *gateway.Packet) bool {
	switch {
	case f.Status != "" && p.Status != f.Status,
		f.Item != "" && p.Item != f.Item,
		f.Origin != "" && p.Origin != f.Origin,
		f.Destination != "" && p.Destination != f.Destination,
		f.Overdue && !p.Overdue:
		return false
	}
	if t, ok := day(f.From); ok && p.Submitted.Before(t) {
		return false
	}
	if t, ok := day(f.To); ok && !p.Submitted.Before(t.AddDate(0, 0, 1)) {
		return false
	}
	return true
}

// packets finds the packets matching f, newest first. The gateway lists
// packets by agency only, so for auditors this reads the packet ids off
// the ledger's packet.submitted entries: a scan of the whole ledger, fine
// for the console's scale and replaced once the gateway offers a search.
func (c *Console) packets(ctx context.Context, who gateway.Principal, f filter) ([]*gateway.Packet, error) {
	var ids []string
	const batch = 1000
	for from := int64(0); ; from += batch {
		recs, err := c.g.EntryRange(ctx, who, from, batch)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Type == gateway.EntrySubmitted && r.Packet != "" {
				ids = append(ids, r.Packet)
			}
		}
		if len(recs) < batch {
			break
		}
	}
	var out []*gateway.Packet
	for i := len(ids) - 1; i >= 0; i-- {
		p, err := c.g.Get(ctx, who, ids[i])
		if err != nil {
			return nil, err
		}
		if f.match(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

type searchData struct {
	F        filter
	Query    string
	Statuses []string
	Items    []gateway.Item
	Agencies []gateway.Agency
	Packets  []*gateway.Packet
}

func (c *Console) search(q *req) {
	f := filterOf(q.r)
	ps, err := c.packets(q.r.Context(), q.s.who, f)
	if err != nil {
		q.fail(c, err)
		return
	}
	q.render(c, http.StatusOK, "search", tr(q.lang, "search"), searchData{F: f, Query: q.r.URL.RawQuery, Statuses: statuses,
		Items: c.g.Catalog().Items, Agencies: c.cfg.Agencies, Packets: ps})
}

func (c *Console) searchCSV(q *req) {
	ps, err := c.packets(q.r.Context(), q.s.who, filterOf(q.r))
	if err != nil {
		q.fail(c, err)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", packetcsv.ContentType)
	h.Set("Content-Disposition", `attachment; filename="packets.csv"`)
	// The rows of the API's export (GET /v1/packets?format=csv); the
	// search is the auditors', who are not shown applicants' names.
	w := packetcsv.NewWriter(q.w)
	for _, p := range ps {
		w.Write(p, nil)
	}
	w.Flush()
}

type ledgerData struct {
	Checkpoint string
	Size       int64
	Key        string
	From       int64
	Prev, Next int64
	HasNext    bool
	Entries    []*ledger.Record
	verifyResult
}

const pageSize = 50

// ledgerPage shows the checkpoint and a page of entries, newest first.
func (c *Console) ledgerPage(q *req) {
	d, err := c.ledgerData(q)
	if err != nil {
		q.fail(c, err)
		return
	}
	if q.r.URL.Query().Get("result") == "1" {
		if res := q.s.lastVerify.Load(); res != nil {
			d.verifyResult = *res
		}
	}
	q.render(c, http.StatusOK, "ledger", tr(q.lang, "ledger"), d)
}

func (c *Console) ledgerData(q *req) (*ledgerData, error) {
	cp, err := c.g.Checkpoint()
	if err != nil {
		return nil, err
	}
	size := c.g.LedgerSize()
	from, err := strconv.ParseInt(q.r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 0 || from >= size {
		from = max(0, size-pageSize)
	}
	recs, err := c.g.EntryRange(q.r.Context(), q.s.who, from, pageSize)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return &ledgerData{Checkpoint: string(cp), Size: size, Key: c.g.LedgerKey(), From: from, Entries: recs,
		Prev: max(0, from-pageSize), Next: from + pageSize, HasNext: from+pageSize < size}, nil
}

// verifyResult is the outcome of a full verification.
type verifyResult struct {
	Verify     *gateway.VerifyReport
	Scrub      *gateway.ScrubReport
	Violations []*ledger.Record
}

// verifyLedger runs the full check: the ledger's chain, tree and
// checkpoints, then every stored object, and lists the integrity
// violations recorded. The console's script asks for NDJSON and gets
// progress lines, then where to see the result; a plain form gets the
// result page.
func (c *Console) verifyLedger(q *req) {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, 8<<10)
	if !q.checkCSRF(q.r.PostFormValue("csrf")) {
		return
	}
	var progress func(stage string) func(done, total int64)
	var enc *json.Encoder
	streaming := strings.Contains(q.r.Header.Get("Accept"), "application/x-ndjson")
	if streaming {
		q.w.Header().Set("Content-Type", "application/x-ndjson")
		enc = json.NewEncoder(q.w)
		flush := http.NewResponseController(q.w).Flush
		progress = func(stage string) func(done, total int64) {
			var last int64 = -1
			return func(done, total int64) {
				if pct := 100 * done / max(total, 1); pct != last { // at most 101 lines a stage
					last = pct
					enc.Encode(map[string]any{"stage": stage, "done": done, "total": total})
					flush()
				}
			}
		}
	} else {
		progress = func(string) func(done, total int64) { return nil }
	}
	res, err := c.runVerify(q, progress)
	if err != nil {
		if streaming {
			enc.Encode(map[string]problem{"error": c.problemOf(err)})
			return
		}
		q.fail(c, err)
		return
	}
	if streaming {
		q.s.lastVerify.Store(res)
		enc.Encode(map[string]string{"next": Prefix + "ledger?result=1"})
		return
	}
	d, err := c.ledgerData(q)
	if err != nil {
		q.fail(c, err)
		return
	}
	d.verifyResult = *res
	q.render(c, http.StatusOK, "ledger", tr(q.lang, "ledger"), d)
}

func (c *Console) runVerify(q *req, progress func(stage string) func(done, total int64)) (*verifyResult, error) {
	ctx := q.r.Context()
	rep, err := c.g.VerifyLedger(ctx, q.s.who, progress("ledger"))
	if err != nil {
		return nil, err
	}
	scrub, err := c.g.Scrub(ctx, q.s.who, progress("objects"))
	if err != nil {
		return nil, err
	}
	res := &verifyResult{Verify: rep, Scrub: scrub}
	for from := int64(0); ; from += 1000 {
		recs, err := c.g.EntryRange(ctx, q.s.who, from, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if r.Type == gateway.EntryViolation {
				res.Violations = append(res.Violations, r)
			}
		}
		if len(recs) < 1000 {
			return res, nil
		}
	}
}
