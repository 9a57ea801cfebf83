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
	"sync"

	"github.com/emmansun/gmsm/sm3"

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
// a value: the objects it claimed from the collector, for a request under
// an Idempotency-Key the description whose fingerprint its parts build
// (nil without a key), and the stores it runs in the background.
//
// A file's store reads the part to its end in the request's goroutine and
// then publishes the object in its own, while the next part is read: a
// small upload thus waits for its S3 requests side by side instead of one
// after the other. Nothing may be recorded before wait has returned nil.
type upload struct {
	claims *claims
	idem   *Idempotency

	mu     sync.Mutex // claims come from the stores running at once
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // bounds the stores running at once
	puts   []*pendingPut // in the order they started
	first  *pendingPut   // the first store to fail; guarded by mu
	wg     sync.WaitGroup
}

// maxPutsInFlight bounds the stores one upload runs at once; each holds
// its buffer (under the store's own bound on all buffers) until published.
const maxPutsInFlight = 4

// startUpload begins an upload; call the returned func when the request is
// over. It stops the stores still running and waits for them before the
// claims are released, so that nothing is published unclaimed.
func (g *Gateway) startUpload(idem *Idempotency) (*upload, func()) {
	c, release := g.claimObjects()
	up := &upload{claims: c, idem: idem, slots: make(chan struct{}, maxPutsInFlight)}
	return up, func() {
		if up.cancel != nil {
			up.cancel()
		}
		up.wg.Wait()
		release()
	}
}

// hook is the BeforePublish of the upload's stores.
func (up *upload) hook(g *Gateway) func(string) error {
	h := up.claims.hook(g)
	return func(d string) error {
		up.mu.Lock()
		defer up.mu.Unlock()
		return h(d)
	}
}

// pendingPut is a store running in the background.
type pendingPut struct {
	read  chan struct{} // closed once the store has read its stream to the end
	ended chan struct{} // closed once the stream ended clean (PutOptions.Ended)
	done  chan struct{} // closed once the store returned; then ref and err are set
	known storage.Info  // digests and size; set before ended is closed
	ref   MaterialRef
	err   error
}

// start runs store in the background on a stream it reads through src and
// returns once the stream is read to its end or the store returned:
// the stream's reader is the caller's again. store must pass the func it
// is given as its PutOptions.Ended.
// A store that holds a file's buffer takes one of the upload's slots
// (slot); a small one (a manifest) does not.
func (up *upload) start(ctx context.Context, slot bool, src io.Reader, store func(ctx context.Context, src io.Reader, ended func(storage.Info)) (MaterialRef, error)) (*pendingPut, error) {
	if slot {
		select {
		case up.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if up.ctx == nil {
		up.ctx, up.cancel = context.WithCancel(ctx)
	}
	p := &pendingPut{read: make(chan struct{}), ended: make(chan struct{}), done: make(chan struct{})}
	var once sync.Once
	ended := func(info storage.Info) {
		once.Do(func() { p.known = info; close(p.ended) })
	}
	r := &endReader{r: src, read: p.read}
	up.puts = append(up.puts, p)
	up.wg.Add(1)
	go func() {
		defer up.wg.Done()
		if slot {
			defer func() { <-up.slots }()
		}
		p.ref, p.err = store(up.ctx, r, ended)
		if k := p.known; p.err == nil && k.SHA256 != "" && (p.ref.SHA256 != k.SHA256 || p.ref.SM3 != k.SM3 || p.ref.Size != k.Size) {
			// What ready reported, and the caller may have written into
			// a manifest, must be what was stored.
			p.err = fmt.Errorf("gateway: stored %s, announced %s", p.ref.SHA256, k.SHA256)
		}
		if p.err != nil {
			up.mu.Lock()
			if up.first == nil {
				up.first = p
				up.cancel() // the request fails: stop the others
			}
			up.mu.Unlock()
		}
		close(p.done)
	}()
	select {
	case <-p.read:
	case <-p.done:
	}
	return p, nil
}

// ready waits until p's digests and size are known (or it failed) and
// returns its ref as far as it is known then.
func (p *pendingPut) ready() (MaterialRef, error) {
	select {
	case <-p.ended:
		return MaterialRef{SHA256: p.known.SHA256, SM3: p.known.SM3, Size: p.known.Size}, nil
	case <-p.done:
	}
	return p.ref, p.err
}

// failed reports whether p has already failed, without waiting.
func (p *pendingPut) failed() bool {
	select {
	case <-p.done:
		return p.err != nil
	default:
		return false
	}
}

// wait waits for every store of the upload and returns the error of the
// first to fail (the others were stopped because of it), or nil once all
// are stored.
func (up *upload) wait() error {
	return up.waitUntil(len(up.puts), nil)
}

// waitUntil waits for the first n stores and returns the error of the
// first store to fail, else err.
func (up *upload) waitUntil(n int, err error) error {
	for _, p := range up.puts[:n] {
		<-p.done
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.first != nil {
		return up.first.err
	}
	return err
}

// endReader passes a store's reads through and closes read at the
// stream's end (any error ends it: a store reads no further).
type endReader struct {
	r      io.Reader
	read   chan struct{}
	closed bool
}

func (e *endReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && !e.closed {
		e.closed = true
		close(e.read)
	}
	return n, err
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
//
// The materials' digests and sizes are final, but their objects may still
// be being published: the caller calls up.wait before it records them.
func (g *Gateway) receiveParts(ctx context.Context, up *upload, first *Part, ps Parts, want map[string]expected, unknown func(kind string) error) (map[string]MaterialRef, []string, error) {
	type received struct {
		ref      MaterialRef
		filename string
		p        *pendingPut
	}
	var parts []received
	got := make(map[string]MaterialRef, len(want))
	var order []string
	part := first
	for {
		if part == nil {
			var err error
			part, err = nextPart(ps)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, up.waitUntil(len(up.puts), err)
			}
		}
		ref, p, err := g.receivePart(ctx, up, part, want, got, unknown)
		if err != nil {
			return nil, nil, up.waitUntil(len(up.puts), err)
		}
		if p.failed() {
			return nil, nil, up.wait()
		}
		parts = append(parts, received{ref, part.Filename, p})
		got[ref.Kind] = ref // the kind only, until the digests are known
		order = append(order, ref.Kind)
		part = nil
	}
	for i, r := range parts {
		known, err := r.p.ready()
		if err != nil {
			return nil, nil, up.waitUntil(len(up.puts), err)
		}
		parts[i].ref.SHA256, parts[i].ref.Size, parts[i].ref.SM3 = known.SHA256, known.Size, known.SM3
		up.idem.notePart(r.ref.Kind, r.filename, known.SHA256)
		got[r.ref.Kind] = parts[i].ref
	}
	return got, order, nil
}

// receivePart checks one file part against the rules of receiveParts and
// starts storing it; the ref it returns lacks the digest and size.
func (g *Gateway) receivePart(ctx context.Context, up *upload, part *Part, want map[string]expected, got map[string]MaterialRef, unknown func(string) error) (MaterialRef, *pendingPut, error) {
	kind := part.Name
	w, ok := want[kind]
	if !ok {
		return MaterialRef{}, nil, unknown(kind)
	}
	if _, dup := got[kind]; dup {
		return MaterialRef{}, nil, fieldError(ErrInvalid, kind, "material %q sent twice", kind)
	}
	if len(got) >= g.cfg.Limits.MaxMaterials {
		return MaterialRef{}, nil, fieldError(ErrInvalid, "materials", "at most %d materials", g.cfg.Limits.MaxMaterials)
	}
	if part.Filename == "" {
		return MaterialRef{}, nil, fieldError(ErrInvalid, kind, "part %q is not a file (it has no filename)", kind)
	}
	name, err := filetype.CleanName(part.Filename)
	if err != nil {
		return MaterialRef{}, nil, fieldError(ErrInvalid, kind, "file name: %v", err)
	}
	if w.filename != "" && name != w.filename {
		return MaterialRef{}, nil, fieldError(ErrInvalid, kind, "file name %q does not match the manifest's %q", part.Filename, w.filename)
	}
	f, err := checkFile(part.Body, kind, w.mat)
	if err != nil {
		return MaterialRef{}, nil, err
	}
	ref := MaterialRef{Kind: w.mat.Kind, ContentType: f.typ}
	if ref.Filename, err = filetype.Name(name, f.typ); err != nil {
		f.close()
		return MaterialRef{}, nil, fieldError(ErrInvalid, kind, "file name: %v", err)
	}
	p, err := up.start(ctx, true, f.src, func(ctx context.Context, src io.Reader, ended func(storage.Info)) (MaterialRef, error) {
		return g.putFile(ctx, up, f, src, w.sha256, ended)
	})
	if err != nil {
		f.close()
		return MaterialRef{}, nil, err
	}
	return ref, p, nil
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

// file is a file part whose head was checked, ready to be stored.
type file struct {
	field string
	mat   *Material
	typ   string
	cr    *clientReader
	br    *bufio.Reader        // from readers; nil once given back
	ofd   *filetype.OFDChecker // for an OFD, checked as it passes; else nil
	src   io.Reader
}

// readers are the 64 KiB buffers files are read through: a large
// allocation per file otherwise, zeroed each time.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// close stops the OFD checker and gives the buffer back; once the file
// is no longer read.
func (f *file) close() {
	if f.ofd != nil {
		f.ofd.Close()
	}
	if f.br != nil {
		f.br.Reset(nil)
		readers.Put(f.br)
		f.br = nil
	}
}

// checkFile checks a file's type by its first bytes against mat; field
// names the material in errors.
func checkFile(r io.Reader, field string, mat *Material) (*file, error) {
	cr := &clientReader{r: r}
	br := readers.Get().(*bufio.Reader)
	br.Reset(cr)
	f := &file{field: field, mat: mat, cr: cr, br: br, src: br}
	head, err := br.Peek(512)
	if len(head) == 0 {
		f.close()
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%w: reading %s: %w", ErrMalformed, field, err)
		}
		return nil, fieldError(ErrInvalid, field, "the file is empty")
	}
	typ, err := filetype.DetectHead(head)
	if err != nil {
		f.close()
		return nil, fieldError(ErrUnsupportedType, field, "%v; accepted: %s", err, strings.Join(mat.Types, ", "))
	}
	f.typ = typ
	if typ == filetype.ZIP {
		if !mat.Accepts(TypeOFD) {
			f.close()
			return nil, fieldError(ErrUnsupportedType, field, "a ZIP archive is accepted only as OFD, which %q does not take; accepted: %s", mat.Kind, strings.Join(mat.Types, ", "))
		}
		f.typ, f.ofd = TypeOFD, filetype.NewOFDChecker()
		f.src = io.TeeReader(br, f.ofd)
	}
	if !mat.Accepts(f.typ) {
		f.close()
		return nil, fieldError(ErrUnsupportedType, field, "the file is %s; accepted: %s", f.typ, strings.Join(mat.Types, ", "))
	}
	return f, nil
}

// putFile stores a checked file read through src (f.src, possibly
// wrapped), checking (for an OFD, by walking the ZIP as it passes) its
// size and its declared digest. ended is the store's PutOptions.Ended.
func (g *Gateway) putFile(ctx context.Context, up *upload, f *file, src io.Reader, declared string, ended func(storage.Info)) (MaterialRef, error) {
	field, mat := f.field, f.mat
	info, err := g.cfg.Store.Put(ctx, src, storage.PutOptions{Size: -1, MaxSize: mat.MaxBytes, SHA256: declared, SM3: g.cfg.SM3,
		BeforePublish: up.hook(g), Ended: ended})
	if f.ofd != nil && (err == nil || errors.Is(err, filetype.ErrNotOFD) || errors.Is(err, filetype.ErrZipBomb)) {
		// The checker's verdict as it is, not as wrapped by the store.
		err = f.ofd.Close()
	}
	f.close()
	if err != nil && f.cr.err != nil {
		// The client's body broke off or exceeded the upload cap
		// (*http.MaxBytesError, 413): not a fault of the gateway.
		return MaterialRef{}, fmt.Errorf("%w: reading %s: %w", ErrMalformed, field, f.cr.err)
	}
	switch {
	case err == nil:
		return MaterialRef{Kind: mat.Kind, Size: info.Size, SHA256: info.SHA256, SM3: info.SM3, ContentType: f.typ}, nil
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

// applicantJSON is the applicant object, salted.
func applicantJSON(app Applicant) ([]byte, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return json.MarshalIndent(&applicantRecord{Type: app.Type, Name: app.Name, ID: app.ID, Salt: hex.EncodeToString(salt)}, "", "  ")
}

// storeJSON stores v, indented, as an object claimed by up, and returns
// its SHA-256 and (gm profile) SM3 digests.
func (g *Gateway) storeJSON(ctx context.Context, up *upload, v any) (string, string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", "", err
	}
	info, err := g.cfg.Store.Put(ctx, bytes.NewReader(b), storage.PutOptions{Size: int64(len(b)), BeforePublish: up.hook(g), SM3: g.cfg.SM3})
	if err != nil {
		return "", "", storageErr(err)
	}
	return info.SHA256, info.SM3, nil
}

// startJSON starts storing b, an object claimed by up, in the background
// and returns its digest; up.wait reports the outcome.
func (g *Gateway) startJSON(ctx context.Context, up *upload, b []byte) (string, error) {
	sum := hexSHA256(b)
	_, err := up.start(ctx, false, bytes.NewReader(b), func(ctx context.Context, src io.Reader, ended func(storage.Info)) (MaterialRef, error) {
		info, err := g.cfg.Store.Put(ctx, src, storage.PutOptions{Size: int64(len(b)), SHA256: sum, BeforePublish: up.hook(g), Ended: ended})
		if err != nil {
			return MaterialRef{}, storageErr(err)
		}
		return MaterialRef{SHA256: info.SHA256, Size: info.Size}, nil
	})
	return sum, err
}

// sm3Of is the hex SM3 digest of b under the gm profile, "" otherwise.
func (g *Gateway) sm3Of(b []byte) string {
	if !g.cfg.SM3 {
		return ""
	}
	sum := sm3.Sum(b)
	return hex.EncodeToString(sum[:])
}
