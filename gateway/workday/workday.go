// Package workday tells working days from days off in mainland China:
// Monday to Friday, less the public holidays the State Council announces
// each year, plus the weekend days it turns into make-up working days
// (调休). The yearly arrangements come from the holiday table of
// github.com/6tail/lunar-go; an override table supplies years the library
// does not know yet and local arrangements. See docs/domain.md.
package workday

import (
	"fmt"
	"time"

	"github.com/6tail/lunar-go/HolidayUtil"
)

// Shanghai is the time zone in which days are counted and deadlines shown.
var Shanghai = loadShanghai()

func loadShanghai() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	// No tzdata on the host. China has kept UTC+8 without daylight saving
	// since 1991, so the fixed zone gives the same wall clock for every
	// date a deadline can fall on.
	return time.FixedZone("CST", 8*60*60)
}

// Override sets one day, taking precedence over the library's table and
// over the weekend rule.
type Override struct {
	Date string `json:"date"`           // YYYY-MM-DD, a date in Shanghai
	Work bool   `json:"work"`           // true: a working day (调休上班); false: a day off
	Name string `json:"name,omitempty"` // what the day is, for people reading the config
}

type day struct {
	year  int
	month time.Month
	day   int
}

// Calendar answers whether a date is a working day. It is immutable and
// safe for concurrent use; a nil *Calendar has no overrides.
type Calendar struct {
	overrides map[day]bool
	years     map[int]bool // years the override table names
}

// New returns a calendar with the given overrides. It refuses a malformed
// date and a date listed twice.
func New(overrides []Override) (*Calendar, error) {
	c := &Calendar{overrides: make(map[day]bool, len(overrides)), years: make(map[int]bool)}
	for i, o := range overrides {
		t, err := time.Parse(time.DateOnly, o.Date)
		if err != nil || t.Format(time.DateOnly) != o.Date {
			return nil, fmt.Errorf("workday: override %d: date %q is not YYYY-MM-DD", i, o.Date)
		}
		d := dayOf(t)
		if _, dup := c.overrides[d]; dup {
			return nil, fmt.Errorf("workday: override %d: %s is listed twice", i, o.Date)
		}
		c.overrides[d] = o.Work
		c.years[d.year] = true
	}
	return c, nil
}

func dayOf(t time.Time) day {
	y, m, d := t.Date()
	return day{y, m, d}
}

// IsWorkday reports whether t's date, in Shanghai, is a working day.
func (c *Calendar) IsWorkday(t time.Time) bool {
	d := dayOf(t.In(Shanghai))
	if c != nil {
		if work, ok := c.overrides[d]; ok {
			return work
		}
	}
	// The library's table only lists the days that differ from the week:
	// holidays (IsWork false) and make-up working days (IsWork true).
	if h := HolidayUtil.GetHolidayByYmd(d.year, int(d.month), d.day); h != nil {
		return h.IsWork()
	}
	wd := t.In(Shanghai).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// AddWorkdays returns the same wall-clock time in Shanghai on the n-th
// working day after t's date; n <= 0 returns t, in Shanghai.
func (c *Calendar) AddWorkdays(t time.Time, n int) time.Time {
	t = t.In(Shanghai)
	for n > 0 {
		t = t.AddDate(0, 0, 1)
		if c.IsWorkday(t) {
			n--
		}
	}
	return t
}

// Covers reports whether the calendar knows the holidays of year, from the
// library or the override table. In a year it does not cover, only
// weekends are days off, so deadlines there come out too early.
func (c *Calendar) Covers(year int) bool {
	return (c != nil && c.years[year]) || HolidayUtil.GetHolidaysByYear(year).Len() > 0
}
