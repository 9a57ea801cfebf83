package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"tongban/gateway/workday"
	"tongban/ledger"
)

func builtinCalendar(t *testing.T) *workday.Calendar {
	t.Helper()
	cal, err := workday.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func TestDeadline(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	fri := time.Date(2026, 11, 27, 15, 0, 0, 0, cst) // a Friday afternoon in Jiashan
	cases := []struct {
		tl   TimeLimit
		want time.Time
	}{
		{TimeLimit{Days: 0}, time.Date(2026, 11, 27, 23, 59, 59, 0, cst)},                     // on the spot: same day
		{TimeLimit{Days: 3, WorkingDays: true}, time.Date(2026, 12, 2, 23, 59, 59, 0, cst)},   // Mon, Tue, Wed
		{TimeLimit{Days: 3}, time.Date(2026, 11, 30, 23, 59, 59, 0, cst)},                     // calendar days
		{TimeLimit{Days: 10, WorkingDays: true}, time.Date(2026, 12, 11, 23, 59, 59, 0, cst)}, // two weeks
	}
	for _, c := range cases {
		if got := deadline(fri.UTC(), c.tl, builtinCalendar(t)); !got.Equal(c.want) {
			t.Errorf("deadline(%+v) = %v, want %v", c.tl, got.In(cst), c.want)
		}
	}
}

// TestDeadlineAcrossHolidays2026 counts working days across each public
// holiday of 2026 and its make-up working days (调休), as arranged by
// 国务院办公厅关于2026年部分节假日安排的通知 (4 November 2025). Each case
// is counted by hand from that notice; the weekend-only count is given
// where it differs, to show what the calendar changes.
func TestDeadlineAcrossHolidays2026(t *testing.T) {
	cst := time.FixedZone("CST", 8*3600)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 23, 59, 59, 0, cst) }
	cal := builtinCalendar(t)
	cases := []struct {
		name  string
		start time.Time // submitted, 10:00 in Jiashan
		tl    TimeLimit
		want  time.Time
	}{
		// Jan 1-3 off; Sunday Jan 4 is a working day (weekends only: Jan 1).
		{"元旦, make-up Sunday", time.Date(2025, 12, 31, 10, 0, 0, 0, cst), TimeLimit{Days: 1, WorkingDays: true}, day(2026, 1, 4)},
		{"元旦", time.Date(2025, 12, 31, 10, 0, 0, 0, cst), TimeLimit{Days: 3, WorkingDays: true}, day(2026, 1, 6)},
		// Saturday Feb 14 works, Feb 15-23 off (weekends only: Feb 18).
		{"春节", time.Date(2026, 2, 13, 10, 0, 0, 0, cst), TimeLimit{Days: 3, WorkingDays: true}, day(2026, 2, 25)},
		// Friday Feb 27, then the make-up Saturday Feb 28 (weekends only: Mar 2).
		{"春节, make-up Saturday", time.Date(2026, 2, 26, 10, 0, 0, 0, cst), TimeLimit{Days: 2, WorkingDays: true}, day(2026, 2, 28)},
		// Friday Apr 3, then Apr 4-6 off (weekends only: Apr 6).
		{"清明节", time.Date(2026, 4, 2, 10, 0, 0, 0, cst), TimeLimit{Days: 2, WorkingDays: true}, day(2026, 4, 7)},
		// May 1-5 off; May 6, 7, 8, the make-up Saturday May 9, May 11.
		{"劳动节", time.Date(2026, 4, 30, 10, 0, 0, 0, cst), TimeLimit{Days: 5, WorkingDays: true}, day(2026, 5, 11)},
		// Friday Jun 19 off (weekends only: Jun 19).
		{"端午节", time.Date(2026, 6, 18, 10, 0, 0, 0, cst), TimeLimit{Days: 1, WorkingDays: true}, day(2026, 6, 22)},
		// Friday Sep 25 off (weekends only: Sep 25).
		{"中秋节", time.Date(2026, 9, 24, 10, 0, 0, 0, cst), TimeLimit{Days: 1, WorkingDays: true}, day(2026, 9, 28)},
		// Sunday Sep 20 works; Sep 25-27 and Oct 1-7 off (weekends only: Oct 2).
		{"国庆节, 10 working days", time.Date(2026, 9, 18, 10, 0, 0, 0, cst), TimeLimit{Days: 10, WorkingDays: true}, day(2026, 10, 9)},
		// Sep 30, Oct 8, Oct 9 and the make-up Saturday Oct 10.
		{"国庆节, make-up Saturday", time.Date(2026, 9, 29, 10, 0, 0, 0, cst), TimeLimit{Days: 4, WorkingDays: true}, day(2026, 10, 10)},
		// Calendar days are not moved by holidays.
		{"国庆节, calendar days", time.Date(2026, 9, 29, 10, 0, 0, 0, cst), TimeLimit{Days: 3}, day(2026, 10, 2)},
		{"春节, on the spot", time.Date(2026, 2, 16, 10, 0, 0, 0, cst), TimeLimit{Days: 0}, day(2026, 2, 16)},
	}
	for _, c := range cases {
		if got := deadline(c.start.UTC(), c.tl, cal); !got.Equal(c.want) {
			t.Errorf("%s: deadline(%v, %+v) = %v, want %v", c.name, c.start, c.tl, got.In(cst), c.want)
		}
	}
}

// TestDeadlineUsesOverrides: a year the library does not know counts its
// holidays from the override table (an arrangement made up for the test).
func TestDeadlineUsesOverrides(t *testing.T) {
	var ov []workday.Override
	for _, d := range []string{"2028-10-02", "2028-10-03", "2028-10-04", "2028-10-05", "2028-10-06"} {
		ov = append(ov, workday.Override{Date: d, Name: "国庆节"})
	}
	ov = append(ov, workday.Override{Date: "2028-09-30", Work: true, Name: "国庆节调休"}) // a Saturday
	cal, err := workday.New(ov)
	if err != nil {
		t.Fatal(err)
	}
	cst := time.FixedZone("CST", 8*3600)
	start := time.Date(2028, 9, 29, 10, 0, 0, 0, cst) // a Friday
	tl := TimeLimit{Days: 3, WorkingDays: true}
	// Saturday Sep 30, then Oct 2-6 off: Mon Oct 9, Tue Oct 10.
	if got, want := deadline(start.UTC(), tl, cal), time.Date(2028, 10, 10, 23, 59, 59, 0, cst); !got.Equal(want) {
		t.Errorf("with overrides: %v, want %v", got.In(cst), want)
	}
	if got, want := deadline(start.UTC(), tl, builtinCalendar(t)), time.Date(2028, 10, 4, 23, 59, 59, 0, cst); !got.Equal(want) {
		t.Errorf("without overrides: %v, want %v (weekends only)", got.In(cst), want)
	}
}

// TestDeadlineShownInShanghai: packets as returned carry the deadline in
// Asia/Shanghai, RFC 3339 with +08:00, whatever zone the view holds.
func TestDeadlineShownInShanghai(t *testing.T) {
	dl := time.Date(2026, 10, 9, 15, 59, 59, 0, time.UTC)
	p := (&Packet{Status: StatusSubmitted, Deadline: dl}).withOverdue(dl.Add(-time.Hour))
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"deadline":"2026-10-09T23:59:59+08:00"`; !strings.Contains(string(b), want) {
		t.Errorf("packet JSON %s lacks %s", b, want)
	}
}

// TestOverdueAndPausedClock: a packet is overdue past its deadline, not
// while a correction is requested, and the time spent in 补正 is added to
// its deadline when it is supplemented.
func TestOverdueAndPausedClock(t *testing.T) {
	submitted := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	p := &Packet{Status: StatusReceived, Submitted: submitted, Deadline: submitted.Add(72 * time.Hour)}
	if p.withOverdue(submitted.Add(71 * time.Hour)).Overdue {
		t.Error("overdue before the deadline")
	}
	if !p.withOverdue(submitted.Add(73 * time.Hour)).Overdue {
		t.Error("not overdue after the deadline")
	}
	paused := submitted.Add(24 * time.Hour)
	p.Status, p.PausedAt = StatusCorrectionRequested, &paused
	if p.withOverdue(submitted.Add(100 * time.Hour)).Overdue {
		t.Error("overdue while a correction is requested")
	}
	for _, s := range []string{StatusApproved, StatusRejected, StatusLicenseIssued, StatusDelivered} {
		q := &Packet{Status: s, Deadline: submitted}
		if q.withOverdue(submitted.Add(time.Hour)).Overdue {
			t.Errorf("a %s packet is overdue", s)
		}
	}
}

func TestSupplementExtendsDeadline(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	dl := t0.Add(72 * time.Hour)
	rec := func(seq int64, typ string, at time.Time, payload string) *ledger.Record {
		return &ledger.Record{Entry: ledger.Entry{Seq: seq, Type: typ, Time: at, Packet: "pk-x", Payload: []byte(payload)}}
	}
	names := func(string) map[string]string { return nil }
	steps := []*ledger.Record{
		rec(0, EntrySubmitted, t0, `{"item":"ENT-SETUP","deadline":"`+dl.Format(time.RFC3339)+`","materials":[]}`),
		rec(1, EntryReceived, t0.Add(time.Hour), `{}`),
		rec(2, EntryReturned, t0.Add(2*time.Hour), `{"reason":"补正"}`),
		rec(3, EntrySupplemented, t0.Add(50*time.Hour), `{"materials":[]}`),
	}
	var p *Packet
	for _, r := range steps {
		var err error
		if p, err = apply(p, r, names); err != nil {
			t.Fatal(err)
		}
	}
	if want := dl.Add(48 * time.Hour); !p.Deadline.Equal(want) || p.PausedAt != nil || p.Status != StatusSubmitted {
		t.Fatalf("after 48 h of 补正: deadline %v (want %v), paused %v, status %s", p.Deadline, want, p.PausedAt, p.Status)
	}
}
