package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"tongban/gateway"
)

// packetView is a packet as GET /v1/packets/ID answers it.
type packetView struct {
	gateway.Packet
	Applicant *gateway.Applicant `json:"applicant,omitempty"`
}

// timeLayout prints times in the local zone, with the offset and the
// zone's name, so a time read off the screen is never ambiguous.
const timeLayout = "2006-01-02 15:04:05 -07:00 MST"

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(timeLayout)
}

// packetPath is the API path of a packet, with the id escaped.
func packetPath(id string, rest ...string) string {
	p := "/v1/packets/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// maxPages bounds how many pages of a listing the CLI reads.
const maxPages = 1000

func runInbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("inbox", flag.ContinueOnError)
	var c apiClient
	c.register(fs, false)
	outbox := fs.Bool("outbox", false, "list the packets your agency sent instead of those sent to it")
	status := fs.String("status", "", "only packets in this status, e.g. submitted, received, correction_requested")
	asJSON := fs.Bool("json", false, "print the server's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("inbox takes no arguments\n%s", flagUsage(fs))
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	q := url.Values{"box": {"inbox"}}
	if *outbox {
		q.Set("box", "outbox")
	}
	if *status != "" {
		q.Set("status", *status)
	}
	var list struct {
		Packets []gateway.Packet `json:"packets"`
	}
	// A gateway that pages its listings names the next page; follow it.
	for pages := 0; ; pages++ {
		var page struct {
			Packets    []gateway.Packet `json:"packets"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := c.getJSON(ctx, "/v1/packets?"+q.Encode(), &page); err != nil {
			return err
		}
		list.Packets = append(list.Packets, page.Packets...)
		if page.NextCursor == "" || page.NextCursor == q.Get("cursor") || pages >= maxPages {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	q.Del("cursor")
	if *asJSON {
		return printJSON(stdout, list)
	}
	if len(list.Packets) == 0 {
		fmt.Fprintf(stdout, "no packets in the %s\n", q.Get("box"))
		return nil
	}
	// Soonest deadline first, as work is done; a running clock before a
	// stopped one.
	slices.SortStableFunc(list.Packets, func(a, b gateway.Packet) int {
		return a.Deadline.Compare(b.Deadline)
	})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tITEM\tFROM\tTO\tSUBMITTED\tDEADLINE\t")
	for _, p := range list.Packets {
		deadline := localTime(p.Deadline)
		if p.Overdue {
			deadline += " OVERDUE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", p.ID, p.Status, p.Item, p.Origin, p.Destination, localTime(p.Submitted), deadline)
	}
	return tw.Flush()
}

func runShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	var c apiClient
	c.register(fs, false)
	asJSON := fs.Bool("json", false, "print the server's JSON")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("show takes one packet id\n%s", flagUsage(fs))
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	var p packetView
	if err := c.getJSON(ctx, packetPath(pos[0]), &p); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, p)
	}
	printPacket(stdout, &p)
	return nil
}

func printPacket(w io.Writer, p *packetView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("packet", p.ID)
	row("status", p.Status)
	row("item", p.Item)
	row("from", p.Origin)
	row("to", p.Destination)
	if p.Applicant != nil {
		row("applicant", fmt.Sprintf("%s (%s %s)", p.Applicant.Name, p.Applicant.Type, p.Applicant.ID))
	}
	row("submitted", localTime(p.Submitted))
	deadline := localTime(p.Deadline)
	if p.PausedAt != nil {
		deadline += ", clock stopped since " + localTime(*p.PausedAt)
	}
	if p.Overdue {
		deadline += " OVERDUE"
	}
	row("deadline", deadline)
	if p.LastReason != "" {
		row("reason", p.LastReason)
	}
	tw.Flush()
	fmt.Fprintln(w, "materials:")
	mats := p.Materials
	if p.License != nil {
		mats = append(slices.Clone(mats), *p.License)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range mats {
		fmt.Fprintf(tw, "  %s\t%s\t%d B\t%s\tsha256 %s\n", m.Kind, m.Filename, m.Size, m.ContentType, m.SHA256)
	}
	tw.Flush()
	fmt.Fprintln(w, "history:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range p.History {
		line := fmt.Sprintf("  %d\t%s\t%s\t%s:%s", e.Seq, localTime(e.Time), e.Type, e.Agency, e.Role)
		if e.Reason != "" {
			line += "\t" + e.Reason
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// actions are what `tongban act` sends.
var actions = []string{"receive", "return", "approve", "reject", "deliver"}

func runAct(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("act", flag.ContinueOnError)
	var c apiClient
	c.register(fs, true)
	reason := fs.String("reason", "", "why (required to return or reject: the applicant is told)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("act takes a packet id and an action\n%s", flagUsage(fs))
	}
	if !slices.Contains(actions, pos[1]) {
		return usageError("unknown action %q: one of %s", pos[1], strings.Join(actions, ", "))
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	req := map[string]string{"action": pos[1]}
	if *reason != "" {
		req["reason"] = *reason
	}
	var p packetView
	if err := c.post(ctx, packetPath(pos[0], "actions"), jsonBody(req), http.StatusOK, &p); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, ledger seq %d\n", p.ID, p.Status, p.LastSeq)
	return nil
}

func runSupplement(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("supplement", flag.ContinueOnError)
	var c apiClient
	c.register(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageError("supplement takes a packet id and KIND=FILE arguments\n%s", flagUsage(fs))
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	id := pos[0]
	if _, err := parseKindFiles(pos[1:]); err != nil {
		return err
	}
	// Check the files against the packet's item before sending any.
	var p packetView
	if err := c.getJSON(ctx, packetPath(id), &p); err != nil {
		return err
	}
	var cat gateway.Catalog
	if err := c.getJSON(ctx, "/v1/catalog", &cat); err != nil {
		return err
	}
	item, ok := cat.Item(p.Item)
	if !ok {
		return fmt.Errorf("the catalogue has no item %q for packet %s", p.Item, id)
	}
	if probs := checkFiles(item, pos[1:], false); len(probs) > 0 {
		return refusal(probs)
	}
	files, err := prepareFiles(pos[1:], stderr)
	if err != nil {
		return err
	}
	var specs []map[string]string
	for _, f := range files {
		specs = append(specs, map[string]string{"kind": f.kind, "filename": f.name, "sha256": f.sha256})
	}
	mj, err := json.Marshal(map[string]any{"materials": specs})
	if err != nil {
		return err
	}
	var out packetView
	if err := c.post(ctx, packetPath(id, "supplements"), uploadBody(mj, files, stderr), http.StatusOK, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, ledger seq %d\n", out.ID, out.Status, out.LastSeq)
	return nil
}

func runLicence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("licence", flag.ContinueOnError)
	var c apiClient
	c.register(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("licence takes a packet id and a file\n%s", flagUsage(fs))
	}
	if err := c.check(stderr); err != nil {
		return err
	}
	id, path := pos[0], pos[1]
	if probs := checkFile("license", path, &licenceMaterial); len(probs) > 0 {
		return refusal(probs)
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	files := []submitFile{{kind: "license", path: path, name: filepath.Base(path), size: st.Size()}}
	var out packetView
	if err := c.post(ctx, packetPath(id, "license"), uploadBody(nil, files, stderr), http.StatusOK, &out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s, ledger seq %d\n", out.ID, out.Status, out.LastSeq)
	if out.License != nil {
		fmt.Fprintf(stdout, "  licence %s %d B sha256 %s\n", out.License.Filename, out.License.Size, out.License.SHA256)
	}
	return nil
}

// licenceMaterial is what the gateway takes as a licence: any material
// type, up to the default size.
var licenceMaterial = gateway.Material{Kind: "license", Name: "证照", Required: true,
	Types: []string{gateway.TypeOFD, gateway.TypePDF, gateway.TypeJPEG, gateway.TypePNG}, MaxBytes: gateway.DefaultMaxBytes}

func runVersion(_ context.Context, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("version takes no arguments")
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build information")
	}
	fmt.Fprintf(stdout, "tongban %s (module %s, %s)\n", bi.Main.Version, bi.Main.Path, bi.GoVersion)
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	if rev := set["vcs.revision"]; rev != "" {
		line := "revision " + rev
		if t, err := time.Parse(time.RFC3339, set["vcs.time"]); err == nil {
			line += ", committed " + localTime(t)
		}
		if set["vcs.modified"] == "true" {
			line += ", with uncommitted changes"
		}
		fmt.Fprintln(stdout, line)
	} else {
		fmt.Fprintln(stdout, "revision unknown (built without version control information)")
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
