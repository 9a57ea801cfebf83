package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeCalendarConfig(t *testing.T, overrides string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	cfg := `{"agencies": [{"id": "qingpu-amr", "name": "青浦区市场监督管理局", "region": "310118", "roles": ["reviewer"]}],
	  "credentials": [{"agency": "qingpu-amr", "role": "reviewer", "token_sha256": "` + strings.Repeat("ab", 32) + `"}],
	  "calendar_overrides": ` + overrides + `}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigCalendarOverrides: the config's override table reaches the
// calendar, a bad one is refused at load time, and serve's start-up warns
// about a year with no known holidays.
func TestConfigCalendarOverrides(t *testing.T) {
	cfg, _, err := loadConfig(writeCalendarConfig(t, `[
	  {"date": "2028-10-02", "work": false, "name": "国庆节"},
	  {"date": "2028-09-30", "work": true, "name": "国庆节调休"}]`))
	if err != nil {
		t.Fatal(err)
	}
	sh := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d.Add(4 * time.Hour) }
	if cfg.calendar.IsWorkday(sh("2028-10-02")) || !cfg.calendar.IsWorkday(sh("2028-09-30")) || !cfg.calendar.Covers(2028) {
		t.Error("the overrides did not reach the calendar")
	}
	var logs bytes.Buffer
	warnUncoveredYears(slog.New(slog.NewTextHandler(&logs, nil)), cfg.calendar, time.Date(2029, 11, 15, 0, 0, 0, 0, time.UTC))
	if !strings.Contains(logs.String(), "year=2029") || !strings.Contains(logs.String(), "year=2030") {
		t.Errorf("no warning for 2029 and 2030:\n%s", logs.String())
	}
	logs.Reset()
	warnUncoveredYears(slog.New(slog.NewTextHandler(&logs, nil)), cfg.calendar, time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC))
	if logs.Len() != 0 {
		t.Errorf("warned about a covered year:\n%s", logs.String())
	}

	for _, bad := range []string{`[{"date": "2028-13-01"}]`, `[{"date": "2028-10-02"}, {"date": "2028-10-02", "work": true}]`, `[{"day": "2028-10-02"}]`} {
		if _, _, err := loadConfig(writeCalendarConfig(t, bad)); err == nil {
			t.Errorf("config with calendar_overrides %s accepted", bad)
		}
	}
}
