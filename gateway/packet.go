package gateway

import (
	"encoding/json"
	"fmt"
	"time"

	"tongban/gateway/workday"
	"tongban/ledger"
	"tongban/ledger/format"
)

// Packet statuses (the workflow in docs/domain.md).
const (
	StatusSubmitted           = "submitted"            // 受理, forwarded
	StatusReceived            = "received"             // destination verified it: a receipt
	StatusCorrectionRequested = "correction_requested" // 补正
	StatusApproved            = "approved"
	StatusRejected            = "rejected"
	StatusLicenseIssued       = "license_issued" // 发证
	StatusDelivered           = "delivered"      // 送达
)

// Ledger entry types.
const (
	EntrySubmitted    = "packet.submitted"
	EntryDownloaded   = "packet.downloaded"
	EntryReceived     = "packet.received"
	EntryReturned     = "packet.returned"
	EntrySupplemented = "packet.supplemented"
	EntryApproved     = "packet.approved"
	EntryRejected     = "packet.rejected"
	EntryLicense      = "license.issued"
	EntryDelivered    = "packet.delivered"
	EntryViolation    = "integrity.violation"
)

// MaterialRef is one stored file of a packet.
type MaterialRef struct {
	Kind        string `json:"kind"`
	Filename    string `json:"filename"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	SM3         string `json:"sm3,omitempty"` // gm profile
	ContentType string `json:"content_type"`
}

// Event is one ledger entry in a packet's history.
type Event struct {
	Seq    int64     `json:"seq"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Agency string    `json:"agency"`
	Role   string    `json:"role"`
	Reason string    `json:"reason,omitempty"`
}

// Packet is the current view of one application packet. It is derived from
// the packet's ledger entries (see apply) and from its stored manifests, so
// it can be rebuilt from them at any time.
type Packet struct {
	ID            string        `json:"id"`
	Status        string        `json:"status"`
	Item          string        `json:"item"`
	Origin        string        `json:"origin"`
	Destination   string        `json:"destination"`
	ApplicantType string        `json:"applicant_type"`
	Manifest      string        `json:"manifest_sha256"` // digest of the current manifest.json
	Materials     []MaterialRef `json:"materials"`
	License       *MaterialRef  `json:"license,omitempty"`
	Submitted     time.Time     `json:"submitted"`
	Updated       time.Time     `json:"updated"`
	Deadline      time.Time     `json:"deadline"`
	PausedAt      *time.Time    `json:"paused_at,omitempty"` // clock stopped for 补正 since
	Overdue       bool          `json:"overdue"`
	LastReason    string        `json:"reason,omitempty"`
	SubmittedSeq  int64         `json:"seq"`
	LastSeq       int64         `json:"last_seq"`
	// History holds the latest LatestEvents events, oldest first;
	// HistoryCount counts them all, and HistoryCursor, if set, pages to
	// the older ones.
	History       []Event `json:"history"`
	HistoryCount  int64   `json:"history_count"`
	HistoryCursor string  `json:"history_cursor,omitempty"`
}

// closed reports whether the packet's clock no longer runs.
func (p *Packet) closed() bool { return closedStatus(p.Status) }

// closedStatus reports whether a packet in status s is decided or done,
// so that its deadline no longer runs.
func closedStatus(s string) bool {
	switch s {
	case StatusApproved, StatusRejected, StatusLicenseIssued, StatusDelivered:
		return true
	}
	return false
}

// withOverdue returns the packet with Overdue computed at now.
func (p *Packet) withOverdue(now time.Time) *Packet {
	c := *p
	c.Overdue = !p.closed() && p.PausedAt == nil && now.After(p.Deadline)
	c.Deadline = p.Deadline.In(workday.Shanghai) // shown with +08:00
	return &c
}

// encodePayload encodes an entry's payload in the ledger's canonical form
// (keys sorted, one spelling per value; docs/formats.md): every payload the
// gateway writes goes through here, once.
func encodePayload(v any) ([]byte, error) { return format.MarshalCanonical(v) }

// payload is an entry's payload; record sets its head.
type payload interface{ setHead(head) }

// head starts every payload record writes: the request's idempotency key
// and fingerprint, if it had a key ("idem", so the ledger itself says which
// keys were used), and the seq of the packet's previous entry
// ("packet_prev", absent on the first), so that a packet's entries form a
// chain of their own and a bundle missing one of them is caught offline.
type head struct {
	Idem       *idemPayload `json:"idem,omitempty"`
	PacketPrev *int64       `json:"packet_prev,omitempty"`
}

func (h *head) setHead(v head) { *h = v }

// Payloads of the ledger entries the gateway writes. They carry digests,
// sizes and ids, never an applicant's name or identifier in clear.
type (
	materialDigest struct {
		Kind        string `json:"kind"`
		SHA256      string `json:"sha256"`
		SM3         string `json:"sm3,omitempty"` // gm profile
		Size        int64  `json:"size"`
		ContentType string `json:"content_type"`
	}
	submittedPayload struct {
		head
		Item        string           `json:"item"`
		Origin      string           `json:"origin"`
		Destination string           `json:"destination"`
		Manifest    string           `json:"manifest"`
		ManifestSM3 string           `json:"manifest_sm3,omitempty"` // gm profile
		Applicant   applicantDigest  `json:"applicant"`
		Materials   []materialDigest `json:"materials"`
		Deadline    time.Time        `json:"deadline"`
	}
	applicantDigest struct {
		Type   string `json:"type"`
		Digest string `json:"hmac_sha256"`
	}
	supplementedPayload struct {
		head
		Manifest    string           `json:"manifest"`
		ManifestSM3 string           `json:"manifest_sm3,omitempty"` // gm profile
		Materials   []materialDigest `json:"materials"`
	}
	receivedPayload struct {
		head
		Manifest string `json:"manifest"` // the manifest the receiver verified
	}
	reasonPayload struct {
		head
		Reason string `json:"reason,omitempty"`
	}
	licensePayload struct {
		head
		materialDigest
		// Filename is the licence's name in a bundle (license/<filename>),
		// chosen by the gateway, so the verifier can require it by name.
		Filename string `json:"filename,omitempty"`
	}
	deliveredPayload struct {
		head
	}
	downloadedPayload struct {
		head
		What string `json:"what"` // "bundle" or "material"
		Kind string `json:"kind,omitempty"`
	}
	violationPayload struct {
		head
		Kind   string `json:"kind,omitempty"`
		SHA256 string `json:"sha256"`
		Got    string `json:"got,omitempty"` // "" when the object is missing
		Detail string `json:"detail"`
	}
)

// apply folds one ledger entry into the packet view. manifest supplies the
// file names, which the ledger does not hold; it may return nil, and the
// kind stands in for the name. apply is the only place that derives state
// from entries, so the live view and a rebuild agree.
func apply(p *Packet, rec *ledger.Record, names func(manifest string) map[string]string) (*Packet, error) {
	e := &rec.Entry
	if p == nil && e.Type != EntrySubmitted {
		return nil, fmt.Errorf("gateway: entry %d (%s) for unknown packet %q", e.Seq, e.Type, e.Packet)
	}
	var c Packet
	if p != nil {
		c = *p
		c.HistoryCursor = ""
		// The view keeps only the latest events (a bounded copy); all of
		// them are kept apart, one key each (see state).
		c.History = append([]Event(nil), p.History[max(0, len(p.History)-LatestEvents+1):]...)
	}
	switch e.Type {
	case EntrySubmitted:
		var pl submittedPayload
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			return nil, fmt.Errorf("gateway: entry %d: %w", e.Seq, err)
		}
		c = Packet{
			ID: e.Packet, Status: StatusSubmitted, Item: pl.Item, Origin: pl.Origin,
			Destination: pl.Destination, ApplicantType: pl.Applicant.Type, Manifest: pl.Manifest,
			Submitted: e.Time, Deadline: pl.Deadline, SubmittedSeq: e.Seq,
		}
		c.Materials = mergeMaterials(nil, pl.Materials, names(pl.Manifest))
	case EntrySupplemented:
		var pl supplementedPayload
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			return nil, fmt.Errorf("gateway: entry %d: %w", e.Seq, err)
		}
		c.Materials = mergeMaterials(c.Materials, pl.Materials, names(pl.Manifest))
		c.Manifest = pl.Manifest
		c.Status = StatusSubmitted
		if c.PausedAt != nil {
			c.Deadline = c.Deadline.Add(e.Time.Sub(*c.PausedAt)) // the clock stood still during 补正
			c.PausedAt = nil
		}
	case EntryReceived:
		c.Status = StatusReceived
	case EntryReturned, EntryApproved, EntryRejected:
		var pl reasonPayload
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			return nil, fmt.Errorf("gateway: entry %d: %w", e.Seq, err)
		}
		c.LastReason = pl.Reason
		c.Status = map[string]string{EntryReturned: StatusCorrectionRequested, EntryApproved: StatusApproved, EntryRejected: StatusRejected}[e.Type]
		if e.Type == EntryReturned {
			t := e.Time
			c.PausedAt = &t
		}
	case EntryLicense:
		var pl licensePayload
		if err := json.Unmarshal(e.Payload, &pl); err != nil {
			return nil, fmt.Errorf("gateway: entry %d: %w", e.Seq, err)
		}
		name := pl.Filename
		if name == "" { // recorded before the name was
			name = "license" + extension(pl.ContentType)
		}
		c.License = &MaterialRef{Kind: "license", Filename: name, Size: pl.Size, SHA256: pl.SHA256, SM3: pl.SM3, ContentType: pl.ContentType}
		c.Status = StatusLicenseIssued
	case EntryDelivered:
		c.Status = StatusDelivered
	case EntryDownloaded, EntryViolation:
		// history only
	default:
		return nil, fmt.Errorf("gateway: entry %d has unknown type %q", e.Seq, e.Type)
	}
	c.History = append(c.History, eventOf(rec))
	c.HistoryCount++
	c.Updated = e.Time
	c.LastSeq = e.Seq
	return &c, nil
}

// eventOf is the history event of an entry; its history is kept apart
// from the view, one key per event, so an entry costs the same however
// long the history already is.
func eventOf(rec *ledger.Record) Event {
	e := &rec.Entry
	ev := Event{Seq: e.Seq, Type: e.Type, Time: e.Time, Agency: e.Actor.Agency, Role: e.Actor.Role}
	switch e.Type {
	case EntryReturned, EntryApproved, EntryRejected:
		var pl reasonPayload
		if json.Unmarshal(e.Payload, &pl) == nil {
			ev.Reason = pl.Reason
		}
	}
	return ev
}

// mergeMaterials folds the materials of an entry into a packet's, named
// from names (by kind; the kind stands in where there is no name).
func mergeMaterials(have []MaterialRef, add []materialDigest, names map[string]string) []MaterialRef {
	refs := make([]MaterialRef, len(add))
	for i, m := range add {
		name := names[m.Kind]
		if name == "" {
			name = m.Kind
		}
		refs[i] = MaterialRef{Kind: m.Kind, Filename: name, Size: m.Size, SHA256: m.SHA256, SM3: m.SM3, ContentType: m.ContentType}
	}
	return mergeRefs(have, refs)
}

// deadline adds an item's time limit to start, counting days in Shanghai:
// working days follow cal (public holidays and 调休 included); 0 days means
// the end of the same day. The ledger keeps it in UTC.
func deadline(start time.Time, tl TimeLimit, cal *workday.Calendar) time.Time {
	t := start.In(workday.Shanghai)
	end := time.Date(t.Year(), t.Month(), t.Day(), 23, 59, 59, 0, workday.Shanghai)
	if tl.WorkingDays {
		end = cal.AddWorkdays(end, tl.Days)
	} else {
		end = end.AddDate(0, 0, tl.Days)
	}
	return end.UTC()
}

// extension returns the usual file extension of a content type.
func extension(contentType string) string {
	switch contentType {
	case TypePDF:
		return ".pdf"
	case TypeOFD:
		return ".ofd"
	case TypeJPEG:
		return ".jpg"
	case TypePNG:
		return ".png"
	}
	return ""
}
