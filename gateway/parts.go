package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"strings"

	"tongban/gateway/filetype"
	"tongban/storage"
)

// Every request that brings files (a submission, a supplement, a licence)
// receives them through receiveParts, so that the rules for a file part
// are the same everywhere.

// Part is one part of an upload as it streams in: the manifest, a material
// or a licence. The wire format is the caller's business (the api package
// reads multipart/form-data); parts are handed over one by one, unbuffered.
type Part struct {
	Name     string    // the form name: "manifest", a material's kind, "license"
	Filename string    // as the client sent it, without any path; "" for none
	Body     io.Reader // read at most once, and only until the next call of Next
}

// Parts yields an upload's parts in the order they came. Next returns
// io.EOF after the last part; any other error is the client's body
// breaking off or being malformed.
type Parts interface {
	Next() (*Part, error)
}

// MultipartParts reads a multipart/form-data body as Parts, streaming:
// each part's body is the reader's own, valid until the next call of Next.
func MultipartParts(r *multipart.Reader) Parts { return multipartParts{r} }

type multipartParts struct{ r *multipart.Reader }

func (m multipartParts) Next() (*Part, error) {
	p, err := m.r.NextPart()
	if err != nil {
		return nil, err
	}
	// FileName is the last element of the client's name, and "" for a
	// part that is not a file.
	return &Part{Name: p.FormName(), Filename: p.FileName(), Body: p}, nil
}

// nextPart returns the next part of an upload, or io.EOF after the last.
func nextPart(ps Parts) (*Part, error) {
	p, err := ps.Next()
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: body: %w", ErrMalformed, err)
	}
	return p, err
}

// upload is the state of one request that stores objects, passed down as
// a value: the objects it claimed from the collector and, for a request
// under an Idempotency-Key, the description whose fingerprint its parts
// build (nil without a key).
type upload struct {
	claims *claims
	idem   *Idempotency
}

// startUpload begins an upload; call the returned func when the request is over.
func (g *Gateway) startUpload(idem *Idempotency) (*upload, func()) {
	c, release := g.claimObjects()
	return &upload{claims: c, idem: idem}, release
}

// expected is a file part a request may carry, by its form name (the kind).
type expected struct {
	mat      *Material
	filename string // the name the manifest gave it; "" to take the part's own
	sha256   string // the declared digest, if any
}

// expectedFrom checks the materials a manifest lists against item and
// returns the file parts to expect; what is wrong goes into bad. A kind
// listed twice is refused, as is a file name filetype.CleanName rejects.
func expectedFrom(item *Item, ms []materialInput, bad fields) map[string]expected {
	want := map[string]expected{}
	listed := map[string]bool{}
	for i, mi := range ms {
		path := fmt.Sprintf("materials[%d]", i)
		name, err := filetype.CleanName(mi.Filename)
		if err != nil && mi.Filename != "" { // an empty one is reported as required
			bad.add(path+".filename", "%v", err)
		}
		if mi.Kind == "" { // reported as required
			continue
		}
		if listed[mi.Kind] {
			bad.add(path+".kind", "material %q listed twice", mi.Kind)
			continue
		}
		listed[mi.Kind] = true
		if item == nil {
			continue
		}
		mat, ok := item.Material(mi.Kind)
		if !ok {
			bad.add(path+".kind", "%s has no material %q", item.Code, mi.Kind)
			continue
		}
		want[mi.Kind] = expected{mat: mat, filename: name, sha256: mi.SHA256}
	}
	return want
}

// receiveParts stores the file parts of a request as they stream past:
// first (if not nil), then the rest of ps. It returns the stored materials
// by kind and the kinds in the order they came. A part must be one of
// want (else unknown says why not), come once, and carry a file name that
// filetype.CleanName accepts and that matches the manifest's, if it gave one.
// A part that breaks a rule is refused (422) before any of its bytes are
// stored; whatever was stored before is left to the collector, and the
// caller records nothing.
func (g *Gateway) receiveParts(ctx context.Context, up *upload, first *Part, ps Parts, want map[string]expected, unknown func(kind string) error) (map[string]MaterialRef, []string, error) {
	got := make(map[string]MaterialRef, len(want))
	var order []string
	part := first
	for {
		if part == nil {
			var err error
			part, err = nextPart(ps)
			if err == io.EOF {
				return got, order, nil
			}
			if err != nil {
				return nil, nil, err
			}
		}
		ref, err := g.receivePart(ctx, up, part, want, got, unknown)
		if err != nil {
			return nil, nil, err
		}
		got[ref.Kind] = ref
		order = append(order, ref.Kind)
		part = nil
	}
}

// receivePart checks one file part against the rules of receiveParts and stores it.
func (g *Gateway) receivePart(ctx context.Context, up *upload, part *Part, want map[string]expected, got map[string]MaterialRef, unknown func(string) error) (MaterialRef, error) {
	kind := part.Name
	w, ok := want[kind]
	if !ok {
		return MaterialRef{}, unknown(kind)
	}
	if _, dup := got[kind]; dup {
		return MaterialRef{}, fieldError(ErrInvalid, kind, "material %q sent twice", kind)
	}
	if len(got) >= g.cfg.Limits.MaxMaterials {
		return MaterialRef{}, fieldError(ErrInvalid, "materials", "at most %d materials", g.cfg.Limits.MaxMaterials)
	}
	if part.Filename == "" {
		return MaterialRef{}, fieldError(ErrInvalid, kind, "part %q is not a file (it has no filename)", kind)
	}
	name, err := filetype.CleanName(part.Filename)
	if err != nil {
		return MaterialRef{}, fieldError(ErrInvalid, kind, "file name: %v", err)
	}
	if w.filename != "" && name != w.filename {
		return MaterialRef{}, fieldError(ErrInvalid, kind, "file name %q does not match the manifest's %q", part.Filename, w.filename)
	}
	ref, err := g.storeFile(ctx, up, part.Body, kind, w.mat, w.sha256)
	if err != nil {
		return MaterialRef{}, err
	}
	up.idem.notePart(kind, part.Filename, ref.SHA256)
	if ref.Filename, err = filetype.Name(name, ref.ContentType); err != nil {
		return MaterialRef{}, fieldError(ErrInvalid, kind, "file name: %v", err)
	}
	return ref, nil
}

// notListed refuses a part the manifest did not list.
func notListed(kind string) error {
	if kind == "manifest" {
		return fieldError(ErrMalformed, "manifest", "the manifest must be the first part, and only once")
	}
	return fieldError(ErrInvalid, kind, "part %q is not a material listed in the manifest", kind)
}

// allArrived checks that every material the manifest listed came.
func allArrived(want map[string]expected, got map[string]MaterialRef) error {
	for kind := range want {
		if _, ok := got[kind]; !ok {
			return fieldError(ErrInvalid, kind, "material %q is listed in the manifest but its file part is missing", kind)
		}
	}
	return nil
}

// inOrder lists refs by kinds.
func inOrder(refs map[string]MaterialRef, kinds []string) []MaterialRef {
	out := make([]MaterialRef, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, refs[k])
	}
	return out
}

// storeFile streams one file into storage, checking its type by its bytes
// (and, for an OFD, by walking the ZIP as it passes), its size and its
// declared digest. field names the material in errors.
func (g *Gateway) storeFile(ctx context.Context, up *upload, r io.Reader, field string, mat *Material, declared string) (MaterialRef, error) {
	cr := &clientReader{r: r}
	br := bufio.NewReaderSize(cr, 64<<10)
	head, err := br.Peek(512)
	if len(head) == 0 {
		if err != nil && err != io.EOF {
			return MaterialRef{}, fmt.Errorf("%w: reading %s: %w", ErrMalformed, field, err)
		}
		return MaterialRef{}, fieldError(ErrInvalid, field, "the file is empty")
	}
	typ, err := filetype.DetectHead(head)
	if err != nil {
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "%v; accepted: %s", err, strings.Join(mat.Types, ", "))
	}
	var ofd *filetype.OFDChecker
	var src io.Reader = br
	if typ == filetype.ZIP {
		if !mat.Accepts(TypeOFD) {
			return MaterialRef{}, fieldError(ErrUnsupportedType, field, "a ZIP archive is accepted only as OFD, which %q does not take; accepted: %s", mat.Kind, strings.Join(mat.Types, ", "))
		}
		typ, ofd = TypeOFD, filetype.NewOFDChecker()
		defer ofd.Close()
		src = io.TeeReader(br, ofd)
	}
	if !mat.Accepts(typ) {
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "the file is %s; accepted: %s", typ, strings.Join(mat.Types, ", "))
	}
	info, err := g.cfg.Store.Put(ctx, src, storage.PutOptions{Size: -1, MaxSize: mat.MaxBytes, SHA256: declared, BeforePublish: up.claims.hook(g), SM3: g.cfg.SM3})
	if ofd != nil && (err == nil || errors.Is(err, filetype.ErrNotOFD) || errors.Is(err, filetype.ErrZipBomb)) {
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
		return MaterialRef{Kind: mat.Kind, Size: info.Size, SHA256: info.SHA256, SM3: info.SM3, ContentType: typ}, nil
	case errors.Is(err, filetype.ErrNotOFD):
		return MaterialRef{}, fieldError(ErrUnsupportedType, field, "a ZIP archive that is not an OFD document: %v", err)
	case errors.Is(err, filetype.ErrZipBomb):
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

// storeManifest stores a manifest and returns its digest, and its SM3
// digest under the gm profile ("" otherwise).
func (g *Gateway) storeManifest(ctx context.Context, up *upload, m *Manifest) (string, string, error) {
	return g.storeJSON(ctx, up, m)
}

// storeApplicant stores the applicant object, salted, and returns its digest.
func (g *Gateway) storeApplicant(ctx context.Context, up *upload, app Applicant) (string, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	digest, _, err := g.storeJSON(ctx, up, &applicantRecord{Type: app.Type, Name: app.Name, ID: app.ID, Salt: hex.EncodeToString(salt)})
	return digest, err
}

// storeJSON stores v, indented, as an object claimed by up, and returns
// its SHA-256 and (gm profile) SM3 digests.
func (g *Gateway) storeJSON(ctx context.Context, up *upload, v any) (string, string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", "", err
	}
	info, err := g.cfg.Store.Put(ctx, bytes.NewReader(b), storage.PutOptions{Size: int64(len(b)), BeforePublish: up.claims.hook(g), SM3: g.cfg.SM3})
	if err != nil {
		return "", "", storageErr(err)
	}
	return info.SHA256, info.SM3, nil
}
