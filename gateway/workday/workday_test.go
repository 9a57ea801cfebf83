package workday

import (
	"testing"
	"time"

	"github.com/6tail/lunar-go/HolidayUtil"
)

// notice2026 is the State Council's arrangement for 2026, transcribed from
// 国务院办公厅关于2026年部分节假日安排的通知 (General Office of the State
// Council, 4 November 2025; published by Xinhua the same day). Off: the
// days of each holiday, ends included; work: the make-up working days
// (调休上班), each a Saturday or Sunday.
var notice2026 = struct {
	off  [][2]string
	work []string
}{
	off: [][2]string{
		{"2026-01-01", "2026-01-03"}, // 元旦, 3 days
		{"2026-02-15", "2026-02-23"}, // 春节, 9 days
		{"2026-04-04", "2026-04-06"}, // 清明节, 3 days
		{"2026-05-01", "2026-05-05"}, // 劳动节, 5 days
		{"2026-06-19", "2026-06-21"}, // 端午节, 3 days
		{"2026-09-25", "2026-09-27"}, // 中秋节, 3 days
		{"2026-10-01", "2026-10-07"}, // 国庆节, 7 days
	},
	work: []string{"2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"},
}

func date(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.ParseInLocation(time.DateOnly, s, Shanghai)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// noticeDays returns the notice's days: true for a make-up working day,
// false for a day off.
func noticeDays(t *testing.T) map[string]bool {
	days := map[string]bool{}
	for _, r := range notice2026.off {
		for d := date(t, r[0]); !d.After(date(t, r[1])); d = d.AddDate(0, 0, 1) {
			days[d.Format(time.DateOnly)] = false
		}
	}
	for _, s := range notice2026.work {
		if wd := date(t, s).Weekday(); wd != time.Saturday && wd != time.Sunday {
			t.Fatalf("transcription: make-up day %s is a %s", s, wd)
		}
		days[s] = true
	}
	if len(days) != 33+6 {
		t.Fatalf("transcription: %d days, the notice has 33 days off and 6 make-up days", len(days))
	}
	return days
}

// TestLibraryAgreesWithNotice2026 checks the library's table against the
// published notice day by day, so a wrong library release fails here.
func TestLibraryAgreesWithNotice2026(t *testing.T) {
	want := noticeDays(t)
	cal, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for d := date(t, "2026-01-01"); d.Year() == 2026; d = d.AddDate(0, 0, 1) {
		key := d.Format(time.DateOnly)
		work, listed := want[key]
		h := HolidayUtil.GetHoliday(key)
		switch {
		case listed && h == nil:
			t.Errorf("%s: the notice lists it (work %v), the library does not", key, work)
		case !listed && h != nil:
			t.Errorf("%s: the library lists it (%v), the notice does not", key, h)
		case listed && h.IsWork() != work:
			t.Errorf("%s: library work=%v, notice work=%v", key, h.IsWork(), work)
		}
		wantWork := d.Weekday() != time.Saturday && d.Weekday() != time.Sunday
		if listed {
			wantWork = work
		}
		if got := cal.IsWorkday(d); got != wantWork {
			t.Errorf("IsWorkday(%s, a %s) = %v, want %v", key, d.Weekday(), got, wantWork)
		}
		if wantWork {
			n++
		}
	}
	// 261 weekdays in 2026, less 19 holidays on weekdays, plus 6 make-up days.
	if n != 248 {
		t.Errorf("%d working days in 2026, want 248", n)
	}
}

func TestAddWorkdays(t *testing.T) {
	cal, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		from string
		n    int
		want string
	}{
		{"2026-02-13", 1, "2026-02-14"}, // Friday -> the make-up Saturday before 春节
		{"2026-02-14", 1, "2026-02-24"}, // across 春节
		{"2026-09-19", 1, "2026-09-20"}, // Saturday -> the make-up Sunday before 国庆
		{"2026-09-29", 4, "2026-10-10"}, // Wed 30, Thu 8, Fri 9, the make-up Saturday 10
		{"2026-03-02", 0, "2026-03-02"},
	}
	for _, c := range cases {
		at := date(t, c.from).Add(9*time.Hour + 30*time.Minute)
		got := cal.AddWorkdays(at, c.n)
		if want := date(t, c.want).Add(9*time.Hour + 30*time.Minute); !got.Equal(want) || got.Location() != Shanghai {
			t.Errorf("AddWorkdays(%s, %d) = %v, want %v in Shanghai", c.from, c.n, got, want)
		}
	}
	// The date is Shanghai's: 17:00 UTC on Friday 13 February is 01:00 on
	// the make-up Saturday in Shanghai.
	got := cal.AddWorkdays(time.Date(2026, 2, 13, 17, 0, 0, 0, time.UTC), 1)
	if want := date(t, "2026-02-24").Add(time.Hour); !got.Equal(want) {
		t.Errorf("from 2026-02-13T17:00Z: %v, want %v", got, want)
	}
}

// TestOverridesCoverUnknownYear: the library does not know 2028; an
// override table does. The arrangement below is made up for the test.
func TestOverridesCoverUnknownYear(t *testing.T) {
	bare, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bare.Covers(2028) {
		t.Fatal("the library knows 2028: pick a later year for this test")
	}
	if !bare.Covers(2026) {
		t.Error("the library does not cover 2026")
	}
	var ov []Override
	for d := 1; d <= 7; d++ {
		ov = append(ov, Override{Date: "2028-10-0" + string(rune('0'+d)), Name: "国庆节"})
	}
	ov = append(ov, Override{Date: "2028-10-08", Work: true, Name: "国庆节调休"}) // a Sunday
	cal, err := New(ov)
	if err != nil {
		t.Fatal(err)
	}
	if !cal.Covers(2028) {
		t.Error("overrides for 2028 do not cover it")
	}
	from := date(t, "2028-09-29") // a Friday
	if got, want := cal.AddWorkdays(from, 2), date(t, "2028-10-09"); !got.Equal(want) {
		t.Errorf("with overrides: %v, want %v (Sunday 8 and Monday 9 October)", got, want)
	}
	if got, want := bare.AddWorkdays(from, 2), date(t, "2028-10-03"); !got.Equal(want) {
		t.Errorf("without overrides: %v, want %v (weekends only)", got, want)
	}
}

// TestOverridesBeatLibrary: a local arrangement changes a day the library
// lists, either way.
func TestOverridesBeatLibrary(t *testing.T) {
	cal, err := New([]Override{
		{Date: "2026-10-10", Work: false, Name: "local: no make-up day"},
		{Date: "2026-10-07", Work: true, Name: "local: open on the last day of 国庆"},
		{Date: "2026-03-04", Work: false, Name: "local day off"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{"2026-10-10": false, "2026-10-07": true, "2026-03-04": false, "2026-03-05": true, "2026-10-06": false} {
		if got := cal.IsWorkday(date(t, s)); got != want {
			t.Errorf("IsWorkday(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestNewRefusesBadOverrides(t *testing.T) {
	for _, ov := range [][]Override{
		{{Date: ""}},
		{{Date: "2026-2-1"}},
		{{Date: "2026-02-30"}},
		{{Date: "2026/02/01"}},
		{{Date: "2026-02-01T00:00:00+08:00"}},
		{{Date: "2026-02-01"}, {Date: "2026-02-01", Work: true}},
	} {
		if _, err := New(ov); err == nil {
			t.Errorf("New(%+v) accepted", ov)
		}
	}
}
