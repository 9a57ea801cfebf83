package gateway

import (
	"testing"
	"time"

	"tongban/ledger"
)

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
		if got := deadline(fri.UTC(), c.tl); !got.Equal(c.want) {
			t.Errorf("deadline(%+v) = %v, want %v", c.tl, got.In(cst), c.want)
		}
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
