package console

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"tongban/gateway"
	"tongban/gateway/packetcsv"
	"tongban/gateway/workday"
	"tongban/ledger"
)

// filter is an auditor's search over packets, as the form sends it.
type filter struct {
	Status, Item, Origin, Destination, From, To string
	Overdue                                     bool
}

func filterOf(r *http.Request) filter {
	q := r.URL.Query()
	return filter{Status: q.Get("status"), Item: q.Get("item"), Origin: q.Get("origin"), Destination: q.Get("destination"),
		From: q.Get("from"), To: q.Get("to"), Overdue: q.Get("overdue") == "1"}
}

// values encodes the filter for a link (the next page, the export).
func (f filter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"status": f.Status, "item": f.Item, "origin": f.Origin, "destination": f.Destination,
		"from": f.From, "to": f.To} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if f.Overdue {
		v.Set("overdue", "1")
	}
	return v
}

// query is the gateway listing of all packets the filter selects: the
// dates are whole days in Beijing time, the "to" day included.
func (f filter) query() (gateway.ListQuery, error) {
	q := gateway.ListQuery{Box: "all", Status: f.Status, Item: f.Item, Origin: f.Origin, Destination: f.Destination}
	bad := map[string]string{}
	if f.From != "" {
		t, err := time.ParseInLocation("2006-01-02", f.From, workday.Shanghai)
		if err != nil {
			bad["from"] = "must be a date, YYYY-MM-DD"
		}
		q.From = t
	}
	if f.To != "" {
		t, err := time.ParseInLocation("2006-01-02", f.To, workday.Shanghai)
		if err != nil {
			bad["to"] = "must be a date, YYYY-MM-DD"
		}
		q.To = t.AddDate(0, 0, 1)
	}
	if len(bad) > 0 {
		return q, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: bad}
	}
	if f.Overdue {
		q.Overdue = &f.Overdue
	}
	return q, nil
}

type searchData struct {
	F        filter
	Query    template.URL // the filter, encoded (by url.Values: safe in a link's query)
	Statuses []string
	Items    []gateway.Item
	Agencies []gateway.Agency
	Packets  []*gateway.Packet
	Paged    bool         // this is not the first page
	Next     template.URL // the next page's query; "" on the last
}

// search shows a page of the packets the filter selects, read from the
// gateway's index (by submission, oldest first), with a link to the next
// page that carries the listing's cursor.
func (c *Console) search(q *req) {
	f := filterOf(q.r)
	lq, err := f.query()
	if err != nil {
		q.fail(c, err)
		return
	}
	lq.Limit = c.cfg.PageSize
	lq.Cursor = q.r.URL.Query().Get("cursor")
	page, err := c.g.List(q.r.Context(), q.s.who, lq)
	if err != nil {
		q.fail(c, err)
		return
	}
	d := searchData{F: f, Query: template.URL(f.values().Encode()), Statuses: statuses, Items: c.g.Catalog().Items, Agencies: c.cfg.Agencies,
		Packets: page.Packets, Paged: lq.Cursor != ""}
	if page.NextCursor != "" {
		v := f.values()
		v.Set("cursor", page.NextCursor)
		d.Next = template.URL(v.Encode())
	}
	q.render(c, http.StatusOK, "search", tr(q.lang, "search"), d)
}

// searchCSV exports every packet the filter selects, a page of the
// listing at a time: memory holds one page, however many packets match.
func (c *Console) searchCSV(q *req) {
	lq, err := filterOf(q.r).query()
	if err != nil {
		q.fail(c, err)
		return
	}
	lq.Limit = c.cfg.PageSize
	if lq.Limit == 0 {
		lq.Limit = gateway.MaxLimit
	}
	ctx := q.r.Context()
	page, err := c.g.List(ctx, q.s.who, lq) // before the first byte, so that a refusal is an error page
	if err != nil {
		q.fail(c, err)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", packetcsv.ContentType)
	h.Set("Content-Disposition", `attachment; filename="packets.csv"`)
	// The rows of the API's export (GET /v1/packets?format=csv); the
	// search is the auditors', who are not shown applicants' names.
	flush := func() {
		if f, ok := q.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	if err := packetcsv.Export(ctx, c.g.List, q.s.who, lq, page, q.w, flush, nil); err != nil {
		// Cut the answer short rather than end a CSV that looks whole.
		c.log.Error("console: CSV export failed", "err", err)
		panic(http.ErrAbortHandler)
	}
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
