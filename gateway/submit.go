package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"tongban/storage"
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
// is in the ledger; the applicant's name and identifier are only here, so
// they can be deleted under retention rules while the ledger stays.
type Manifest struct {
	Packet      string        `json:"packet"`
	Version     int           `json:"version"` // 1, then +1 per supplement
	Item        string        `json:"item"`
	Origin      string        `json:"origin"`
	Destination string        `json:"destination"`
	Applicant   Applicant     `json:"applicant"`
	Materials   []MaterialRef `json:"materials"`
	Created     time.Time     `json:"created"`
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

// expected is a file part the manifest announced.
type expected struct {
	mat      *Material
	filename string
	sha256   string
}

// Submit accepts a packet from an origin window: a multipart stream whose
// first part is the manifest (JSON) and whose other parts are the files,
// one per listed material, form name = kind. Each file goes to storage as
// it arrives, hashed and type-checked on the way; the packet exists, and
// its packet.submitted entry is written, only once every file is stored.
// On any failure nothing is recorded (stored files become garbage for the
// collector).
func (g *Gateway) Submit(ctx context.Context, who Principal, mr *multipart.Reader) (*Packet, error) {
	if who.Role != RoleSubmitter {
		return nil, fmt.Errorf("%w: only submitters send packets", ErrForbidden)
	}
	ctx, release := g.claimObjects(ctx)
	defer release()
	var in manifestInput
	if err := g.readManifestPart(ctx, mr, &in); err != nil {
		return nil, err
	}
	item, want, app, err := g.checkManifest(who, &in)
	if err != nil {
		return nil, err
	}
	refs, err := g.receiveFiles(ctx, mr, want)
	if err != nil {
		return nil, err
	}
	now := g.cfg.Now().UTC()
	id := newPacketID()
	m := &Manifest{Packet: id, Version: 1, Item: item.Code, Origin: who.Agency, Destination: in.Destination, Applicant: app, Created: now}
	for _, mi := range in.Materials {
		m.Materials = append(m.Materials, refs[mi.Kind])
	}
	digest, err := g.storeManifest(ctx, m)
	if err != nil {
		return nil, err
	}
	payload := submittedPayload{
		Item: item.Code, Origin: who.Agency, Destination: in.Destination, Manifest: digest,
		Applicant: applicantDigest{Type: app.Type, Digest: g.applicantDigestOf(app.Type, app.ID)},
		Materials: digestsOf(m.Materials), Deadline: deadline(now, item.TimeLimit),
	}
	defer g.lock(id)()
	p, _, err := g.record(ctx, who, nil, EntrySubmitted, id, payload, namesOf(m.Materials))
	if err != nil {
		return nil, err
	}
	return p.withOverdue(g.cfg.Now()), nil
}

func digestsOf(refs []MaterialRef) []materialDigest {
	out := make([]materialDigest, len(refs))
	for i, r := range refs {
		out[i] = materialDigest{Kind: r.Kind, SHA256: r.SHA256, Size: r.Size, ContentType: r.ContentType}
	}
	return out
}

// readManifestPart reads the first part, which must be the manifest.
func (g *Gateway) readManifestPart(ctx context.Context, mr *multipart.Reader, into any) error {
	part, err := mr.NextPart()
	if err == io.EOF {
		return fieldError(ErrMalformed, "manifest", "the body has no parts; the manifest part comes first")
	}
	if err != nil {
		return fmt.Errorf("%w: multipart body: %w", ErrMalformed, err)
	}
	defer part.Close()
	if part.FormName() != "manifest" {
		return fieldError(ErrMalformed, "manifest", "the first part must be the manifest, not %q", part.FormName())
	}
	return g.decodeManifestPart(ctx, part, into)
}

// decodeManifestPart reads a manifest part, bounded, into into.
func (g *Gateway) decodeManifestPart(ctx context.Context, part *multipart.Part, into any) error {
	b, err := io.ReadAll(io.LimitReader(part, g.cfg.Limits.MaxManifestBytes+1))
	if err != nil {
		return fmt.Errorf("%w: manifest part: %w", ErrMalformed, err)
	}
	if int64(len(b)) > g.cfg.Limits.MaxManifestBytes {
		return fieldError(ErrTooLarge, "manifest", "larger than %d bytes", g.cfg.Limits.MaxManifestBytes)
	}
	notePart(ctx, part.FormName(), part.FileName(), hexSHA256(b))
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(into); err != nil {
		return fieldError(ErrMalformed, "manifest", "not valid JSON of the expected shape: %v", err)
	}
	if dec.More() {
		return fieldError(ErrMalformed, "manifest", "trailing data after the JSON object")
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
	}
	switch app.Type {
	case ApplicantPerson:
		if id, err := NormalizeCitizenID(app.ID); err != nil {
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
	want := map[string]expected{}
	for i, mi := range in.Materials {
		path := fmt.Sprintf("materials[%d]", i)
		name, err := SafeFilename(mi.Filename)
		if err != nil && mi.Filename != "" {
			bad.add(path+".filename", "%v", err)
		}
		if _, dup := want[mi.Kind]; dup {
			bad.add(path+".kind", "material %q listed twice", mi.Kind)
			continue
		}
		if item == nil || mi.Kind == "" {
			continue
		}
		mat, ok := item.Material(mi.Kind)
		if !ok {
			bad.add(path+".kind", "%s has no material %q", item.Code, mi.Kind)
			continue
		}
		want[mi.Kind] = expected{mat: mat, filename: name, sha256: mi.SHA256}
	}
	if item != nil {
		for _, m := range item.Materials {
			if _, ok := want[m.Kind]; m.Required && !ok {
				bad.add("materials", "missing required material %q (%s)", m.Kind, m.Name)
			}
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

// receiveFiles stores each file part as it streams past and returns the
// stored materials by kind. Every expected file must arrive exactly once.
func (g *Gateway) receiveFiles(ctx context.Context, mr *multipart.Reader, want map[string]expected) (map[string]MaterialRef, error) {
	got := make(map[string]MaterialRef, len(want))
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: multipart body: %w", ErrMalformed, err)
		}
		kind := part.FormName()
		w, ok := want[kind]
		switch {
		case kind == "manifest":
			part.Close()
			return nil, fieldError(ErrMalformed, "manifest", "the manifest must be the first part, and only once")
		case !ok:
			part.Close()
			return nil, fieldError(ErrInvalid, kind, "part %q is not a material listed in the manifest", kind)
		case got[kind].SHA256 != "":
			part.Close()
			return nil, fieldError(ErrInvalid, kind, "material %q sent twice", kind)
		case part.FileName() == "":
			part.Close()
			return nil, fieldError(ErrInvalid, kind, "part %q is not a file (it has no filename)", kind)
		}
		if name, _ := SafeFilename(part.FileName()); name != w.filename {
			part.Close()
			return nil, fieldError(ErrInvalid, kind, "file name %q does not match the manifest's %q", part.FileName(), w.filename)
		}
		ref, err := g.storeFile(ctx, part, kind, w.mat, w.sha256)
		part.Close()
		if err != nil {
			return nil, err
		}
		notePart(ctx, kind, part.FileName(), ref.SHA256)
		ref.Filename = w.filename
		got[kind] = ref
	}
	for kind := range want {
		if _, ok := got[kind]; !ok {
			return nil, fieldError(ErrInvalid, kind, "material %q is listed in the manifest but its file part is missing", kind)
		}
	}
	return got, nil
}

// storeFile streams one file into storage, checking its type by its bytes
// (and, for an OFD, by walking the ZIP as it passes), its size and its
// declared digest. field names the material in errors.
func (g *Gateway) storeFile(ctx context.Context, r io.Reader, field string, mat *Material, declared string) (MaterialRef, error) {
	cr := &clientReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	head, err := br.Peek(512)
	if len(head) == 0 {
		if err != nil && err != io.EOF {
			return MaterialRef{}, fmt.Errorf("%w: reading %s: %w", ErrMalformed, field, err)
		}
		return MaterialRef{}, fieldError(ErrInvalid, field, "the file is empty")
	}
	typ, err := DetectHead(head)
	if err != nil {
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "%v; accepted: %s", err, strings.Join(mat.Types, ", "))
	}
	var ofd *OFDChecker
	var src io.Reader = br
	if typ == TypeZIP {
		if !mat.Accepts(TypeOFD) {
			return MaterialRef{}, fieldError(ErrUnsupportedType, field, "a ZIP archive is accepted only as OFD, which %q does not take; accepted: %s", mat.Kind, strings.Join(mat.Types, ", "))
		}
		typ, ofd = TypeOFD, NewOFDChecker()
		defer ofd.Close()
		src = io.TeeReader(br, ofd)
	}
	if !mat.Accepts(typ) {
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "the file is %s; accepted: %s", typ, strings.Join(mat.Types, ", "))
	}
	info, err := g.cfg.Store.Put(ctx, src, storage.PutOptions{Size: -1, MaxSize: mat.MaxBytes, SHA256: declared, BeforePublish: g.claimHook(ctx)})
	if ofd != nil && (err == nil || errors.Is(err, ErrNotOFD) || errors.Is(err, ErrZipBomb)) {
		// The checker's verdict as it is, not as wrapped by the store.
		err = ofd.Close()
	}
	if err != nil && cr.err != nil {
		// The client's body broke off or exceeded the upload cap
		// (*http.MaxBytesError, 413): not a fault of the gateway.
		return MaterialRef{}, fmt.Errorf("%w: reading %s: %w", ErrMalformed, field, cr.err)
	}
	switch {
	case err == nil:
		return MaterialRef{Kind: mat.Kind, Size: info.Size, SHA256: info.SHA256, ContentType: typ}, nil
	case errors.Is(err, ErrNotOFD):
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "a ZIP archive that is not an OFD document: %v", err)
	case errors.Is(err, ErrZipBomb):
		return MaterialRef{}, fieldError(ErrInvalid, field, "the OFD document is malformed: %v", err)
	case errors.Is(err, storage.ErrTooLarge):
		return MaterialRef{}, fieldError(ErrTooLarge, field, "larger than the %d bytes allowed for %q", mat.MaxBytes, mat.Kind)
	case errors.Is(err, storage.ErrDigestMismatch):
		return MaterialRef{}, fieldError(ErrInvalid, field, "the file's SHA-256 does not match the declared %s", declared)
	case errors.Is(err, storage.ErrUnavailable):
		return MaterialRef{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return MaterialRef{}, fmt.Errorf("gateway: storing %s: %w", field, err)
}

// clientReader remembers the first error, other than io.EOF, of reading
// a client's file part, so that a broken request is told from a failing store.
type clientReader struct {
	r   io.Reader
	err error
}

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// storeManifest stores a manifest and returns its digest.
func (g *Gateway) storeManifest(ctx context.Context, m *Manifest) (string, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	info, err := g.cfg.Store.Put(ctx, bytes.NewReader(b), storage.PutOptions{Size: int64(len(b)), BeforePublish: g.claimHook(ctx)})
	if err != nil {
		return "", storageErr(err)
	}
	return info.SHA256, nil
}

// Supplement adds the materials asked for in a correction request (补正)
// and sends the packet back to the destination. The body is like a
// submission's: an optional manifest part {"materials": [...]} first, then
// one file part per material. Without a manifest part, each file part's
// form name is its kind and its filename is taken as sent.
func (g *Gateway) Supplement(ctx context.Context, who Principal, id string, mr *multipart.Reader) (*Packet, error) {
	ctx, release := g.claimObjects(ctx)
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
	refs, order, err := g.receiveSupplement(ctx, mr, item)
	if err != nil {
		return nil, err
	}
	m := *old
	m.Version++
	m.Created = g.cfg.Now().UTC()
	var added []MaterialRef
	for _, kind := range order {
		added = append(added, refs[kind])
	}
	m.Materials = mergeRefs(old.Materials, added)
	digest, err := g.storeManifest(ctx, &m)
	if err != nil {
		return nil, err
	}
	defer g.lock(id)()
	if p, err = g.packetForStep(who, id, "origin", StatusCorrectionRequested, "supplement"); err != nil {
		return nil, err // it moved on during the upload
	}
	next, _, err := g.record(ctx, who, p, EntrySupplemented, id, supplementedPayload{Manifest: digest, Materials: digestsOf(added)}, namesOf(m.Materials))
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

// receiveSupplement reads a supplement body, with or without a manifest part.
func (g *Gateway) receiveSupplement(ctx context.Context, mr *multipart.Reader, item *Item) (map[string]MaterialRef, []string, error) {
	part, err := mr.NextPart()
	if err == io.EOF {
		return nil, nil, fieldError(ErrInvalid, "materials", "no materials supplied")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: multipart body: %w", ErrMalformed, err)
	}
	var in supplementInput
	want := map[string]expected{}
	var order []string
	bad := fields{}
	if part.FormName() == "manifest" {
		err := g.decodeManifestPart(ctx, part, &in)
		part.Close()
		if err != nil {
			return nil, nil, err
		}
		g.structErrors(&in, bad)
		for i, mi := range in.Materials {
			mat, ok := item.Material(mi.Kind)
			name, nerr := SafeFilename(mi.Filename)
			switch {
			case !ok:
				bad.add(fmt.Sprintf("materials[%d].kind", i), "%s has no material %q", item.Code, mi.Kind)
			case nerr != nil:
				bad.add(fmt.Sprintf("materials[%d].filename", i), "%v", nerr)
			default:
				if _, dup := want[mi.Kind]; dup {
					bad.add(fmt.Sprintf("materials[%d].kind", i), "material %q listed twice", mi.Kind)
				}
				want[mi.Kind] = expected{mat: mat, filename: name, sha256: mi.SHA256}
				order = append(order, mi.Kind)
			}
		}
		if err := bad.err(); err != nil {
			return nil, nil, err
		}
		refs, err := g.receiveFiles(ctx, mr, want)
		return refs, order, err
	}
	// No manifest: every part is a material named by its form name.
	refs := map[string]MaterialRef{}
	for {
		kind := part.FormName()
		mat, ok := item.Material(kind)
		if !ok {
			part.Close()
			return nil, nil, fieldError(ErrInvalid, kind, "%s has no material %q", item.Code, kind)
		}
		if _, dup := refs[kind]; dup {
			part.Close()
			return nil, nil, fieldError(ErrInvalid, kind, "material %q sent twice", kind)
		}
		name, err := SafeFilename(part.FileName())
		if err != nil {
			part.Close()
			return nil, nil, fieldError(ErrInvalid, kind, "file name: %v", err)
		}
		ref, err := g.storeFile(ctx, part, kind, mat, "")
		part.Close()
		if err != nil {
			return nil, nil, err
		}
		notePart(ctx, kind, part.FileName(), ref.SHA256)
		ref.Filename = name
		refs[kind] = ref
		order = append(order, kind)
		if len(order) > g.cfg.Limits.MaxMaterials {
			return nil, nil, fieldError(ErrInvalid, "materials", "at most %d materials", g.cfg.Limits.MaxMaterials)
		}
		part, err = mr.NextPart()
		if err == io.EOF {
			return refs, order, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: multipart body: %w", ErrMalformed, err)
		}
	}
}

// licenseMaterial is what an issued licence may be.
var licenseMaterial = Material{Kind: "license", Name: "证照", NameEN: "issued licence", Required: true,
	Types: []string{TypeOFD, TypePDF, TypeJPEG, TypePNG}, MaxBytes: DefaultMaxBytes}

// IssueLicense stores the licence the destination issued for an approved
// packet (multipart part "license") and moves it to license_issued.
func (g *Gateway) IssueLicense(ctx context.Context, who Principal, id string, mr *multipart.Reader) (*Packet, error) {
	ctx, release := g.claimObjects(ctx)
	defer release()
	// As for supplements: check, upload without the lock, check again.
	if _, err := g.packetForStep(who, id, "destination", StatusApproved, "issue a licence for"); err != nil {
		return nil, err
	}
	part, err := mr.NextPart()
	if err == io.EOF {
		return nil, fieldError(ErrInvalid, "license", "the licence file part is missing")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: multipart body: %w", ErrMalformed, err)
	}
	defer part.Close()
	if part.FormName() != "license" {
		return nil, fieldError(ErrInvalid, "license", "expected the part %q, got %q", "license", part.FormName())
	}
	ref, err := g.storeFile(ctx, part, "license", &licenseMaterial, "")
	if err != nil {
		return nil, err
	}
	notePart(ctx, "license", part.FileName(), ref.SHA256)
	if _, err := mr.NextPart(); err != io.EOF {
		return nil, fieldError(ErrInvalid, "license", "only one part, the licence, is expected")
	}
	defer g.lock(id)()
	p, err := g.packetForStep(who, id, "destination", StatusApproved, "issue a licence for")
	if err != nil {
		return nil, err
	}
	next, _, err := g.record(ctx, who, p, EntryLicense, id, licensePayload{digestsOf([]MaterialRef{ref})[0]}, namesOf(p.Materials))
	if err != nil {
		return nil, err
	}
	return next.withOverdue(g.cfg.Now()), nil
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
