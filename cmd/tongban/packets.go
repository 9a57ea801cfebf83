package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"

	"tongban/gateway"
	"tongban/internal/durable"
)

// optionalBool is a flag that may be left unset: --overdue, --overdue=false.
type optionalBool struct {
	set, v bool
}

func (b *optionalBool) String() string {
	if b == nil || !b.set {
		return ""
	}
	return strconv.FormatBool(b.v)
}

func (b *optionalBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	b.set, b.v = true, v
	return nil
}

func (b *optionalBool) IsBoolFlag() bool { return true }

// runPackets searches packets: auditors all of them, agencies their inbox
// or outbox. It prints a table (times local), the server's JSON, or with
// --csv the server's CSV export of every match.
func runPackets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("packets", flag.ContinueOnError)
	var c apiClient
	c.register(fs, false)
	q := url.Values{}
	filters := []struct{ name, usage string }{
		{"box", "inbox, outbox or all (default: all for auditors, inbox for reviewers, outbox for submitters)"},
		{"status", "only packets in this status, e.g. submitted, correction_requested, delivered"},
		{"item", "only packets of this service item, e.g. ENT-SETUP"},
		{"origin", "only packets from this agency"},
		{"destination", "only packets to this agency"},
		{"from", "only packets submitted on or after this date (2006-01-02, Beijing time) or RFC 3339 time"},
		{"to", "only packets submitted before this date or time"},
	}
	vals := map[string]*string{}
	for _, f := range filters {
		vals[f.name] = fs.String(f.name, "", f.usage)
	}
	var overdue optionalBool
	fs.Var(&overdue, "overdue", "only overdue packets (--overdue=false: only those not overdue)")
	limit := fs.Int("limit", 0, fmt.Sprintf("packets per page (server default %d, at most %d)", gateway.DefaultLimit, gateway.MaxLimit))
	cursor := fs.String("cursor", "", "start at this page (the cursor printed after the previous one)")
	all := fs.Bool("all", false, "follow the cursors to the last page")
	asCSV := fs.Bool("csv", false, "write the server's CSV export of every matching packet")
	out := fs.String("out", "", "with --csv: write to this file (complete or not at all) instead of stdout")
	asJSON := fs.Bool("json", false, "print the server's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usageError("packets takes no arguments\n%s", flagUsage(fs))
	case *asCSV && *asJSON:
		return usageError("--csv and --json exclude each other")
	case *asCSV && (*limit != 0 || *cursor != ""):
		return usageError("--csv exports every matching packet: it takes no --limit or --cursor")
	case *out != "" && !*asCSV:
		return usageError("--out is for --csv")
	case *limit < 0:
		return usageError("--limit must be positive")
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	for _, f := range filters {
		if v := *vals[f.name]; v != "" {
			q.Set(f.name, v)
		}
	}
	if overdue.set {
		q.Set("overdue", overdue.String())
	}
	if *asCSV {
		q.Set("format", "csv")
		return c.exportCSV(ctx, "/v1/packets?"+q.Encode(), *out, stdout)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *cursor != "" {
		q.Set("cursor", *cursor)
	}

	var list gateway.Page
	list.Packets = []*gateway.Packet{}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	n := 0
	for pages := 1; ; pages++ {
		var page gateway.Page
		if err := c.getJSON(ctx, "/v1/packets?"+q.Encode(), &page); err != nil {
			return err
		}
		if *asJSON {
			list.Packets = append(list.Packets, page.Packets...)
		} else {
			if n == 0 && len(page.Packets) > 0 {
				fmt.Fprintln(tw, "ID\tSTATUS\tITEM\tFROM\tTO\tSUBMITTED\tDEADLINE\t")
			}
			writePacketRows(tw, page.Packets)
		}
		n += len(page.Packets)
		list.NextCursor = page.NextCursor
		if page.NextCursor == "" || !*all {
			break
		}
		if page.NextCursor == q.Get("cursor") {
			return fmt.Errorf("the server named the same page again (cursor %s)", page.NextCursor)
		}
		if pages >= maxPages {
			fmt.Fprintf(stderr, "tongban: stopped after %d pages\n", pages)
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if *asJSON {
		return printJSON(stdout, list)
	}
	if n == 0 {
		fmt.Fprintln(stdout, "no packets match")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if list.NextCursor != "" {
		fmt.Fprintf(stderr, "more packets match: --cursor %s for the next page, or --all\n", list.NextCursor)
	}
	return nil
}

// writePacketRows writes packets as rows of the ID STATUS ITEM FROM TO
// SUBMITTED DEADLINE table, times in the local zone.
func writePacketRows(w io.Writer, ps []*gateway.Packet) {
	for _, p := range ps {
		deadline := localTime(p.Deadline)
		if p.Overdue {
			deadline += " OVERDUE"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.ID, p.Status, p.Item, p.Origin, p.Destination, localTime(p.Submitted), deadline)
	}
}

// exportCSV copies the server's CSV export to out, or to stdout if out is
// "". A file is written beside its final name and renamed once complete,
// so an export broken off leaves no partial file behind.
func (c *apiClient) exportCSV(ctx context.Context, path, out string, stdout io.Writer) error {
	resp, err := c.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == "" {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return fmt.Errorf("the export broke off: %w", err)
		}
		return nil
	}
	f, err := durable.Create(out, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return fmt.Errorf("the export broke off: %w", err)
	}
	return f.Commit()
}
