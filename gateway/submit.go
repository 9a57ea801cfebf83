package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"tongban/gateway/ident"
	"tongban/gateway/strictjson"
)

// Applicant is who applies: a person (resident ID number) or an enterprise
// (unified social credit code).
type Applicant struct {
	Type string `json:"type"`
	Name string `json:"name"`
	ID   string `json:"id"`
}

// Applicant types.
const (
	ApplicantPerson     = "person"
	ApplicantEnterprise = "enterprise"
)

// Manifest is the packet's manifest.json as stored and bundled. Its SHA-256
// is in the ledger. The applicant's name and identifier are not in it but in
// their own object (applicantRecord), which the manifest names by digest: so
// an auditor's bundle proves everything without them, and they can be
// deleted under retention rules while the ledger and the manifest stay.
type Manifest struct {
	Packet      string            `json:"packet"`
	Version     int               `json:"version"` // 1, then +1 per supplement
	Item        string            `json:"item"`
	Origin      string            `json:"origin"`
	Destination string            `json:"destination"`
	Applicant   ManifestApplicant `json:"applicant"`
	Materials   []MaterialRef     `json:"materials"`
	Created     time.Time         `json:"created"`
}

// ManifestApplicant is the applicant as a manifest names it: the type and the
// digest of the applicant object (applicant.json in a reviewer's bundle).
// Manifests written before the split hold name and id in clear instead.
type ManifestApplicant struct {
	Type   string `json:"type"`
	SHA256 string `json:"sha256,omitempty"`
	Name   string `json:"name,omitempty"` // older manifests only
	ID     string `json:"id,omitempty"`   // older manifests only
}

// applicantRecord is the stored applicant object. The salt (32 random
// bytes, hex) keeps its digest, which manifests and bundles show, from
// being found by trying every ID number of a region and birth date.
type applicantRecord struct {
	Type string `json:"type"`
	Name string `json:"name"`
	ID   string `json:"id"`
	Salt string `json:"salt"`
}

// manifestInput is the manifest part of POST /v1/packets.
type manifestInput struct {
	Item        string          `json:"item" validate:"required,max=64"`
	Destination string          `json:"destination" validate:"required,max=64"`
	Applicant   applicantInput  `json:"applicant"`
	Materials   []materialInput `json:"materials" validate:"required,min=1,dive"`
}

type applicantInput struct {
	Type string `json:"type" validate:"required"`
	Name string `json:"name" validate:"required,max=200"`
	ID   string `json:"id" validate:"required,max=64"`
}

type materialInput struct {
	Kind     string `json:"kind" validate:"required,max=64"`
	Filename string `json:"filename" validate:"required,max=255"`
	SHA256   string `json:"sha256" validate:"omitempty,sha256"` // not hexadecimal: it allows "0x"
}

// applicantTypes maps accepted spellings to the two applicant types.
var applicantTypes = map[string]string{
	"person": ApplicantPerson, "citizen": ApplicantPerson, "individual": ApplicantPerson, "natural_person": ApplicantPerson,
	"个人": ApplicantPerson, "自然人": ApplicantPerson,
	"enterprise": ApplicantEnterprise, "company": ApplicantEnterprise, "corporation": ApplicantEnterprise,
	"legal_person": ApplicantEnterprise, "organization": ApplicantEnterprise, "organisation": ApplicantEnterprise,
	"企业": ApplicantEnterprise, "法人": ApplicantEnterprise,
}

// Submit accepts a packet from an origin window: a multipart stream whose
// first part is the manifest (JSON) and whose other parts are the files,
// one per listed material, form name = kind. Each file goes to storage as
// it arrives, hashed and type-checked on the way; the packet exists, and
// its packet.submitted entry is written, only once every file is stored.
// On any failure nothing is recorded (stored files become garbage for the
// collector).
// idem is nil for a request without an Idempotency-Key.
func (g *Gateway) Submit(ctx context.Context, who Principal, idem *Idempotency, ps Parts) (*Packet, error) {
	if who.Role != RoleSubmitter {
		return nil, fmt.Errorf("%w: only submitters send packets", ErrForbidden)
	}
	up, release := g.startUpload(idem)
	defer release()
	var in manifestInput
	if err := g.readManifestPart(up.idem, ps, &in); err != nil {
		return nil, err
	}
	item, want, app, err := g.checkManifest(who, &in)
	if err != nil {
		return nil, err
	}
	refs, _, err := g.receiveParts(ctx, up, nil, ps, want, notListed)
	if err != nil {
		return nil, err
	}
	if err := allArrived(want, refs); err != nil {
		return nil, err
	}
	now := g.cfg.Now().UTC()
	id := newPacketID()
	// The applicant object and the manifest are stored beside the files
	// still being published; all are stored before anything is recorded.
	appJSON, err := applicantJSON(app)
	if err != nil {
		return nil, err
	}
	appDigest, err := g.startJSON(ctx, up, appJSON)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Packet: id, Version: 1, Item: item.Code, Origin: who.Agency, Destination: in.Destination,
		Applicant: ManifestApplicant{Type: app.Type, SHA256: appDigest}, Created: now}
	for _, mi := range in.Materials {
		m.Materials = append(m.Materials, refs[mi.Kind])
	}
	mJSON, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	digest, err := g.startJSON(ctx, up, mJSON)
	if err != nil {
		return nil, err
	}
	digestSM3 := g.sm3Of(mJSON)
	if err := up.wait(); err != nil {
		return nil, err
	}
	payload := &submittedPayload{
		Item: item.Code, Origin: who.Agency, Destination: in.Destination, Manifest: digest, ManifestSM3: digestSM3,
		Applicant: applicantDigest{Type: app.Type, Digest: g.applicantDigestOf(app.Type, app.ID)},
		Materials: digestsOf(m.Materials), Deadline: deadline(now, item.TimeLimit, g.cfg.Calendar),
	}
	defer g.lock(id)()
	p, _, err := g.record(ctx, who, idem, nil, EntrySubmitted, id, payload, namesOf(m.Materials))
	if err != nil {
		return nil, err
	}
	return p.withOverdue(g.cfg.Now()), nil
}

func digestsOf(refs []MaterialRef) []materialDigest {
	out := make([]materialDigest, len(refs))
	for i, r := range refs {
		out[i] = materialDigest{Kind: r.Kind, SHA256: r.SHA256, SM3: r.SM3, Size: r.Size, ContentType: r.ContentType}
	}
	return out
}

// readManifestPart reads the first part, which must be the manifest.
func (g *Gateway) readManifestPart(idem *Idempotency, ps Parts, into any) error {
	part, err := nextPart(ps)
	if err == io.EOF {
		return fieldError(ErrMalformed, "manifest", "the body has no parts; the manifest part comes first")
	}
	if err != nil {
		return err
	}
	if part.Name != "manifest" {
		return fieldError(ErrMalformed, "manifest", "the first part must be the manifest, not %q", part.Name)
	}
	return g.decodeManifestPart(idem, part, into)
}

// decodeManifestPart reads a manifest part, bounded, into into.
func (g *Gateway) decodeManifestPart(idem *Idempotency, part *Part, into any) error {
	b, err := io.ReadAll(io.LimitReader(part.Body, g.cfg.Limits.MaxManifestBytes+1))
	if err != nil {
		return fmt.Errorf("%w: manifest part: %w", ErrMalformed, err)
	}
	if int64(len(b)) > g.cfg.Limits.MaxManifestBytes {
		return fieldError(ErrTooLarge, "manifest", "larger than %d bytes", g.cfg.Limits.MaxManifestBytes)
	}
	idem.notePart(part.Name, part.Filename, hexSHA256(b))
	if err := strictjson.Unmarshal(b, into); err != nil {
		return fieldError(ErrMalformed, "manifest", "not valid JSON of the expected shape: %v", err)
	}
	return nil
}

// checkManifest validates a submission's manifest against the catalogue,
// the agencies and the identifier rules, and lists the files to expect.
func (g *Gateway) checkManifest(who Principal, in *manifestInput) (*Item, map[string]expected, Applicant, error) {
	bad := fields{}
	g.structErrors(in, bad)
	if len(in.Materials) > g.cfg.Limits.MaxMaterials {
		bad.add("materials", "at most %d materials per packet", g.cfg.Limits.MaxMaterials)
	}
	item, ok := g.cfg.Catalog.Item(in.Item)
	if !ok && in.Item != "" {
		bad.add("item", "unknown service item %q (see GET /v1/catalog)", in.Item)
	}
	dest, ok := g.agencies[in.Destination]
	switch {
	case in.Destination == "":
	case !ok:
		bad.add("destination", "unknown agency %q", in.Destination)
	case !dest.Can(RoleReviewer):
		bad.add("destination", "agency %q does not review packets", in.Destination)
	case dest.ID == who.Agency:
		bad.add("destination", "a packet goes to another agency than its origin")
	case item != nil && !item.AllowsDestination(dest.ID):
		bad.add("destination", "agency %q does not handle %s", dest.ID, item.Code)
	}
	app := Applicant{Type: applicantTypes[strings.ToLower(strings.TrimSpace(in.Applicant.Type))], Name: strings.TrimSpace(in.Applicant.Name), ID: strings.TrimSpace(in.Applicant.ID)}
	if app.Name == "" {
		bad.add("applicant.name", "is required") // also when it is only spaces
	} else if msg := applicantNameProblem(app.Name); msg != "" {
		bad.add("applicant.name", "%s", msg)
	}
	switch app.Type {
	case ApplicantPerson:
		if id, err := ident.NormalizeCitizenID(app.ID); err != nil {
			bad.add("applicant.id", "not a valid resident ID number: %v", err)
		} else {
			app.ID = id
		}
	case ApplicantEnterprise:
		app.ID = strings.ToUpper(app.ID)
		if g.validate.Var(app.ID, "uscc") != nil {
			bad.add("applicant.id", "not a valid unified social credit code (GB 32100-2015)")
		}
	default:
		if in.Applicant.Type != "" {
			bad.add("applicant.type", "must be person or enterprise, not %q", in.Applicant.Type)
		}
	}
	want := expectedFrom(item, in.Materials, bad)
	if item != nil {
		var missing []string // all of them, not only the first
		for _, m := range item.Materials {
			if _, ok := want[m.Kind]; m.Required && !ok {
				missing = append(missing, fmt.Sprintf("%q (%s)", m.Kind, m.Name))
			}
		}
		if len(missing) > 0 {
			bad.add("materials", "missing required material %s", strings.Join(missing, ", "))
		}
	}
	if err := bad.err(); err != nil {
		return nil, nil, app, err
	}
	return item, want, app, nil
}

// structErrors adds the validator's findings on a struct to bad.
func (g *Gateway) structErrors(v any, bad fields) {
	err := g.validate.Struct(v)
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return
	}
	for _, fe := range ves {
		path := fe.Namespace()
		if _, rest, ok := strings.Cut(path, "."); ok {
			path = rest // drop the struct's own name
		}
		msg := fe.Tag()
		switch fe.Tag() {
		case "required":
			msg = "is required"
		case "max":
			msg = "longer than " + fe.Param()
		case "min":
			msg = "needs at least " + fe.Param()
		case "len", "hexadecimal", "lowercase", "sha256":
			msg = "must be 64 lowercase hex digits (SHA-256)"
		}
		bad.add(path, "%s", msg)
	}
}

// Supplement adds the materials asked for in a correction request (补正)
// and sends the packet back to the destination. The body is like a
// submission's: an optional manifest part {"materials": [...]} first, then
// one file part per material. Without a manifest part, each file part's
// form name is its kind and its filename is taken as sent.
// idem is nil for a request without an Idempotency-Key.
func (g *Gateway) Supplement(ctx context.Context, who Principal, idem *Idempotency, id string, ps Parts) (*Packet, error) {
	up, release := g.startUpload(idem)
	defer release()
	// Check before the upload, without the packet's lock: the upload may
	// take long, and the lock would stall every other step on the packet.
	p, err := g.packetForStep(who, id, "origin", StatusCorrectionRequested, "supplement")
	if err != nil {
		return nil, err
	}
	item, ok := g.cfg.Catalog.Item(p.Item)
	if !ok {
		return nil, fmt.Errorf("%w: item %s is no longer in the catalogue", ErrConflict, p.Item)
	}
	old, err := g.readManifest(ctx, who, id, p.Manifest)
	if err != nil {
		return nil, err
	}
	added, err := g.receiveSupplement(ctx, up, ps, item)
	if err != nil {
		return nil, err
	}
	m := *old
	m.Version++
	m.Created = g.cfg.Now().UTC()
	m.Materials = mergeRefs(old.Materials, added)
	digest, digestSM3, err := g.storeManifest(ctx, up, &m)
	if err != nil {
		return nil, err
	}
	if err := up.wait(); err != nil {
		return nil, err
	}
	defer g.lock(id)()
	version := p.version()
	if p, err = g.packetForStep(who, id, "origin", StatusCorrectionRequested, "supplement"); err != nil {
		return nil, err // it moved on during the upload
	}
	if err := unchanged(p, version, "supplement"); err != nil {
		return nil, err // the new manifest was built on a stale one
	}
	next, _, err := g.record(ctx, who, idem, p, EntrySupplemented, id, &supplementedPayload{Manifest: digest, ManifestSM3: digestSM3, Materials: digestsOf(added)}, namesOf(m.Materials))
	if err != nil {
		return nil, err
	}
	return next.withOverdue(g.cfg.Now()), nil
}

// mergeRefs replaces materials of the same kind and appends new ones.
func mergeRefs(have, add []MaterialRef) []MaterialRef {
	out := append([]MaterialRef(nil), have...)
	for _, a := range add {
		i := -1
		for j := range out {
			if out[j].Kind == a.Kind {
				i = j
			}
		}
		if i >= 0 {
			out[i] = a
		} else {
			out = append(out, a)
		}
	}
	return out
}

type supplementInput struct {
	Materials []materialInput `json:"materials" validate:"required,min=1,dive"`
}

// receiveSupplement reads a supplement body, with or without a manifest
// part, and returns the stored materials in the manifest's order, or else
// in the order they came.
func (g *Gateway) receiveSupplement(ctx context.Context, up *upload, ps Parts, item *Item) ([]MaterialRef, error) {
	part, err := nextPart(ps)
	if err == io.EOF {
		return nil, fieldError(ErrInvalid, "materials", "no materials supplied")
	}
	if err != nil {
		return nil, err
	}
	if part.Name != "manifest" {
		// No manifest: every part is a material named by its form name,
		// and its file name is taken as sent.
		want := map[string]expected{}
		for i := range item.Materials {
			want[item.Materials[i].Kind] = expected{mat: &item.Materials[i]}
		}
		got, order, err := g.receiveParts(ctx, up, part, ps, want, func(kind string) error {
			return fieldError(ErrInvalid, kind, "%s has no material %q", item.Code, kind)
		})
		if err != nil {
			return nil, err
		}
		return inOrder(got, order), nil
	}
	var in supplementInput
	if err := g.decodeManifestPart(up.idem, part, &in); err != nil {
		return nil, err
	}
	bad := fields{}
	g.structErrors(&in, bad)
	want := expectedFrom(item, in.Materials, bad)
	if err := bad.err(); err != nil {
		return nil, err
	}
	got, _, err := g.receiveParts(ctx, up, nil, ps, want, notListed)
	if err != nil {
		return nil, err
	}
	if err := allArrived(want, got); err != nil {
		return nil, err
	}
	kinds := make([]string, len(in.Materials))
	for i, mi := range in.Materials {
		kinds[i] = mi.Kind
	}
	return inOrder(got, kinds), nil
}

// licenseMaterial is what an issued licence may be.
var licenseMaterial = Material{Kind: "license", Name: "证照", NameEN: "issued licence", Required: true,
	Types: []string{TypeOFD, TypePDF, TypeJPEG, TypePNG}, MaxBytes: DefaultMaxBytes}

// IssueLicense stores the licence the destination issued for an approved
// packet (multipart part "license") and moves it to license_issued.
// idem is nil for a request without an Idempotency-Key.
func (g *Gateway) IssueLicense(ctx context.Context, who Principal, idem *Idempotency, id string, ps Parts) (*Packet, error) {
	up, release := g.startUpload(idem)
	defer release()
	// As for supplements: check, upload without the lock, check again.
	before, err := g.packetForStep(who, id, "destination", StatusApproved, "issue a licence for")
	if err != nil {
		return nil, err
	}
	want := map[string]expected{"license": {mat: &licenseMaterial}}
	got, _, err := g.receiveParts(ctx, up, nil, ps, want, func(kind string) error {
		return fieldError(ErrInvalid, "license", "expected the part %q, got %q", "license", kind)
	})
	if err != nil {
		return nil, err
	}
	ref, ok := got["license"]
	if !ok {
		return nil, fieldError(ErrInvalid, "license", "the licence file part is missing")
	}
	if err := up.wait(); err != nil {
		return nil, err
	}
	defer g.lock(id)()
	p, err := g.packetForStep(who, id, "destination", StatusApproved, "issue a licence for")
	if err != nil {
		return nil, err
	}
	if err := unchanged(p, before.version(), "licence"); err != nil {
		return nil, err
	}
	next, _, err := g.record(ctx, who, idem, p, EntryLicense, id, &licensePayload{materialDigest: digestsOf([]MaterialRef{ref})[0], Filename: "license" + extension(ref.ContentType)}, namesOf(p.Materials))
	if err != nil {
		return nil, err
	}
	return next.withOverdue(g.cfg.Now()), nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
