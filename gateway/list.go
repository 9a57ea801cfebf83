package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// Page sizes of listings and histories.
const (
	DefaultLimit = 50
	MaxLimit     = 500
	// LatestEvents is how many of the latest events a packet carries.
	LatestEvents = 20
)

// ListQuery selects packets for List. Box is "inbox" (the caller's agency
// is the destination; by deadline, soonest first), "outbox" (the origin;
// by submission) or "all" (auditors; by submission); empty means the
// outbox for submitters and the inbox for reviewers. The other fields
// filter; zero values do not.
type ListQuery struct {
	Box         string
	Status      string
	Item        string
	Origin      string
	Destination string
	From, To    time.Time // submitted in [From, To)
	Overdue     *bool
	Limit       int    // DefaultLimit if 0, at most MaxLimit
	Cursor      string // from the previous page's NextCursor; "" is the first page
	// Reverse lists the box's order backwards: the outbox and all newest
	// first, the inbox latest deadline first. Its cursors page backwards.
	// (The console's boxes; the HTTP API keeps one order.)
	Reverse bool
}

// Page is one page of a listing. NextCursor is "" on the last page.
type Page struct {
	Packets    []*Packet `json:"packets"`
	NextCursor string    `json:"next_cursor,omitempty"`
}

// listPlan is where a query reads: an index prefix and what the rows
// must match.
type listPlan struct {
	prefix  []byte
	from    []byte // first key suffix, exclusive when it is a cursor (nil: the prefix's start)
	stop    func(suffix []byte) bool
	reverse bool // from the end of the prefix down
}

func (g *Gateway) plan(who Principal, q *ListQuery) (*listPlan, error) {
	if q.Box == "" {
		q.Box = map[string]string{RoleSubmitter: "outbox", RoleReviewer: "inbox", RoleAuditor: "all"}[who.Role]
	}
	switch q.Box {
	case "inbox", "outbox":
		if who.Role != RoleSubmitter && who.Role != RoleReviewer {
			return nil, fmt.Errorf("%w: inbox and outbox are for submitters and reviewers", ErrForbidden)
		}
	case "all":
		if who.Role != RoleAuditor {
			return nil, fmt.Errorf("%w: box=all is for auditors", ErrForbidden)
		}
	default:
		return nil, fieldError(ErrMalformed, "box", "must be inbox, outbox or all, not %q", q.Box)
	}
	if q.Status != "" && !slices.Contains(allStatuses, q.Status) {
		return nil, fieldError(ErrMalformed, "status", "unknown status %q", q.Status)
	}
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, fieldError(ErrMalformed, "limit", "must be between 1 and %d", MaxLimit)
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, fieldError(ErrMalformed, "from", "must be before to")
	}
	st := q.Status
	if st == "" {
		st = "*"
	}
	pl := listPlan{reverse: q.Reverse}
	byTime := false // keys start with the submission time
	switch {
	case q.Box == "inbox":
		pl.prefix = inboxPrefix(who.Agency, st)
		if q.Overdue != nil && *q.Overdue && !q.Reverse {
			// By deadline: the overdue come first.
			now := be8(g.cfg.Now().UnixNano())
			pl.stop = func(s []byte) bool { return string(s[:8]) >= string(now) }
		}
	case q.Box == "outbox":
		pl.prefix = outboxPrefix(who.Agency, st)
	case q.Item != "":
		pl.prefix, byTime = itemPrefix(q.Item), true
	default:
		pl.prefix, byTime = allPrefix(st), true
	}
	// Keys of a time index begin with the submission time: the scan
	// starts at one end of [From, To) and stops at the other.
	start, end := q.From, q.To
	if q.Reverse {
		start, end = q.To, q.From
	}
	if byTime && !start.IsZero() {
		pl.from = be8(indexTime(start))
	}
	if byTime && !end.IsZero() {
		e := be8(indexTime(end))
		if q.Reverse {
			pl.stop = func(s []byte) bool { return string(s[:8]) < string(e) }
		} else {
			pl.stop = func(s []byte) bool { return string(s[:8]) >= string(e) }
		}
	}
	if q.Cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		behind := pl.from != nil && (!q.Reverse && string(c) < string(pl.from) || q.Reverse && string(c) > string(pl.from))
		if err != nil || len(c) != 8 && len(c) != 16 || behind {
			return nil, fieldError(ErrMalformed, "cursor", "not a cursor of this listing")
		}
		pl.from = c
	}
	return &pl, nil
}

// indexTime is t as the index keeps times, in Unix nanoseconds, clamped
// to what the gateway's clock can have written (1970 to 2262): a bound
// before 1970 would otherwise sort after every key (its sign bit set) and
// one after 2262 overflow.
func indexTime(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// matches applies the filters the index did not.
func (q *ListQuery) matches(r *row, now time.Time) bool {
	switch {
	case q.Status != "" && r.Status != q.Status,
		q.Item != "" && r.Item != q.Item,
		q.Origin != "" && r.Origin != q.Origin,
		q.Destination != "" && r.Destination != q.Destination,
		!q.From.IsZero() && r.Submitted < indexTime(q.From),
		!q.To.IsZero() && r.Submitted >= indexTime(q.To),
		q.Overdue != nil && r.overdue(now) != *q.Overdue:
		return false
	}
	return true
}

// List returns one page of packets. Submitters and reviewers list their
// agency's inbox or outbox; auditors list all packets. The order is
// stable: a packet present from the first page to the last, and not
// changed meanwhile, is on exactly one page.
func (g *Gateway) List(ctx context.Context, who Principal, q ListQuery) (*Page, error) {
	pl, err := g.plan(who, &q)
	if err != nil {
		return nil, err
	}
	if err := g.Recovering(); err != nil {
		return nil, err
	}
	now := g.cfg.Now()
	page := &Page{Packets: []*Packet{}}
	var last []byte
	n := 0
	full := false
	err = g.state.scan(pl.prefix, pl.from, pl.reverse, func(suffix []byte, r *row) (bool, bool) {
		if pl.stop != nil && pl.stop(suffix) {
			return false, false
		}
		if n == q.Limit {
			full = q.matches(r, now) // one more matching row exists: stop there
			return false, !full
		}
		if !q.matches(r, now) {
			return false, true
		}
		n++
		last = suffix
		return true, true
	}, func(p *Packet) {
		page.Packets = append(page.Packets, p)
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: list: %w", err)
	}
	for i, p := range page.Packets {
		withHistory(p)
		page.Packets[i] = p.withOverdue(now)
	}
	if full {
		page.NextCursor = base64.RawURLEncoding.EncodeToString(last)
	}
	return page, nil
}

// Counts returns the number of packets per status in a box: the agency's
// inbox or outbox, or (auditors) all packets. Counts are kept with the
// views: no packet is read.
func (g *Gateway) Counts(ctx context.Context, who Principal, box string) (map[string]int64, error) {
	q := ListQuery{Box: box}
	if _, err := g.plan(who, &q); err != nil {
		return nil, err
	}
	if err := g.Recovering(); err != nil {
		return nil, err
	}
	scope := map[string]string{"inbox": "I" + who.Agency, "outbox": "O" + who.Agency, "all": "A"}[q.Box]
	return g.state.count(scope)
}

// HistoryPage is a page of a packet's history, oldest first; NextCursor
// pages to older events.
type HistoryPage struct {
	Events     []Event `json:"events"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// History returns up to limit events of a packet before the cursor (from
// a packet's HistoryCursor or a previous page; "" for the latest).
func (g *Gateway) History(ctx context.Context, who Principal, id, cursor string, limit int) (*HistoryPage, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, fieldError(ErrMalformed, "limit", "must be between 1 and %d", MaxLimit)
	}
	before := int64(-1)
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err == nil {
			before, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || before < 0 {
			return nil, fieldError(ErrMalformed, "cursor", "not a history cursor")
		}
	}
	if _, err := g.packetFor(who, id); err != nil {
		return nil, err
	}
	evs, more, err := g.state.history(id, before, limit)
	if err != nil {
		return nil, fmt.Errorf("gateway: history: %w", err)
	}
	hp := &HistoryPage{Events: evs}
	if evs == nil {
		hp.Events = []Event{}
	}
	if more {
		hp.NextCursor = historyCursor(evs[0].Seq)
	}
	return hp, nil
}

func historyCursor(before int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(before, 10)))
}

// withHistory sets the cursor to the events older than those the view
// carries.
func withHistory(p *Packet) {
	p.HistoryCursor = ""
	if p.History == nil {
		p.History = []Event{}
	}
	if len(p.History) > 0 && int64(len(p.History)) < p.HistoryCount {
		p.HistoryCursor = historyCursor(p.History[0].Seq)
	}
}

// manifestNames returns a lookup of file names by kind from a stored
// manifest, for apply during a replay; nil if it cannot be read.
func (g *Gateway) manifestNames(ctx context.Context) func(string) map[string]string {
	return func(digest string) map[string]string {
		b, err := g.loadManifest(ctx, digest)
		var m Manifest
		if err != nil || json.Unmarshal(b, &m) != nil {
			return nil // the kinds stand in for the names
		}
		return namesOf(m.Materials)
	}
}
