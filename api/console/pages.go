package console

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"tongban/api/internal/upload"
	"tongban/gateway"
)

func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
		return
	}
	ss, ok := c.sessions.get(ck.Value)
	if !ok {
		http.Redirect(w, r, Prefix+"login?expired=1", http.StatusSeeOther)
		return
	}
	to := map[string]string{gateway.RoleSubmitter: "outbox", gateway.RoleReviewer: "inbox", gateway.RoleAuditor: "search"}[ss.who.Role]
	http.Redirect(w, r, Prefix+to, http.StatusSeeOther)
}

type loginData struct {
	Token   string
	Message string
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	tok := randomToken()
	setCookie(w, r, loginCookie, tok, 0)
	msg := ""
	switch {
	case r.URL.Query().Get("expired") == "1":
		msg = "expired"
	case r.URL.Query().Get("out") == "1":
		msg = "signed_out"
	}
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, http.StatusOK, "login", tr(langOf(r), "signin"), gateway.Principal{}, "", loginData{Token: tok, Message: msg})
}

// login checks the form's CSRF token against the sign-in cookie, then the
// bearer token with the API's own lookup, and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	ck, err := r.Cookie(loginCookie)
	if err != nil || !equalTokens(r.PostFormValue("csrf"), ck.Value) {
		http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	who, until, err := c.cfg.SignIn(strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		tok := randomToken()
		setCookie(w, r, loginCookie, tok, 0)
		c.render(w, r, http.StatusUnauthorized, "login", tr(langOf(r), "signin"), gateway.Principal{}, "", loginData{Token: tok, Message: "bad_token"})
		return
	}
	id, ss := c.sessions.create(who, until)
	setCookie(w, r, loginCookie, "", 0)
	setCookie(w, r, sessionCookie, id, ss.expires.Sub(c.cfg.Now()).Round(time.Second))
	c.log.Info("console: signed in", "agency", who.Agency, "role", who.Role)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *Console) logout(q *req) {
	if !q.checkCSRF(q.r.PostFormValue("csrf")) {
		return
	}
	c.sessions.end(q.sid)
	setCookie(q.w, q.r, sessionCookie, "", 0)
	http.Redirect(q.w, q.r, Prefix+"login?out=1", http.StatusSeeOther)
}

// setLang switches the language and goes back to a console page.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PathValue("lang")
	if lang != "en" {
		lang = "zh"
	}
	http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: Prefix, MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	back := r.URL.Query().Get("back")
	if u, err := url.Parse(back); err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, Prefix) {
		back = Prefix // only back into the console: no open redirect
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

type listData struct {
	Box      string
	Status   string
	Statuses []string
	Packets  []*gateway.Packet
	More     bool // the box holds more than it shows
}

var statuses = []string{gateway.StatusSubmitted, gateway.StatusReceived, gateway.StatusCorrectionRequested,
	gateway.StatusApproved, gateway.StatusRejected, gateway.StatusLicenseIssued, gateway.StatusDelivered}

// box lists the inbox or the outbox, at most BoxSize packets: the outbox
// newest first; the inbox open packets first, by deadline, soonest first,
// then closed ones in what room is left, those with the latest deadlines,
// also shown by deadline. More says that some were left out.
func (c *Console) box(box string) func(*req) {
	return func(q *req) {
		status := q.r.URL.Query().Get("status")
		var ps []*gateway.Packet
		var more bool
		var err error
		if box == "outbox" {
			ps, more, err = c.list(q, gateway.ListQuery{Box: box, Status: status, Reverse: true})
		} else {
			ps, more, err = c.inbox(q, status)
		}
		if err != nil {
			q.fail(c, err)
			return
		}
		q.render(c, http.StatusOK, "list", tr(q.lang, box), listData{Box: box, Status: status, Statuses: statuses, Packets: ps, More: more})
	}
}

// inbox reads the inbox a status at a time, each from the gateway's
// index by deadline: the open statuses from the soonest deadline, the
// closed ones from the latest, only as many as there is room for. One
// listing of every status would fill the page with the oldest closed
// packets once there are more than fit. The listings are separate reads:
// a packet that changes status between them is shown once, as the later
// one saw it. The box's counts say whether it holds more than it shows.
func (c *Console) inbox(q *req, status string) ([]*gateway.Packet, bool, error) {
	if status != "" && !slices.Contains(statuses, status) {
		// The gateway names the field.
		_, _, err := c.list(q, gateway.ListQuery{Box: "inbox", Status: status})
		return nil, false, err
	}
	n := c.cfg.BoxSize
	var read []*gateway.Packet
	for _, open := range []bool{true, false} {
		room := n
		if !open {
			room = n - min(n, len(read))
		}
		for _, st := range statuses {
			if status != "" && st != status || isOpen(st) != open || room == 0 {
				continue
			}
			ps, _, err := c.list(q, gateway.ListQuery{Box: "inbox", Status: st, Reverse: !open, Limit: room})
			if err != nil {
				return nil, false, err
			}
			read = append(read, ps...)
		}
	}
	last := map[string]int{}
	for i, p := range read {
		last[p.ID] = i
	}
	var open, closed []*gateway.Packet
	for i, p := range read {
		switch {
		case last[p.ID] != i:
		case isOpen(p.Status):
			open = append(open, p)
		default:
			closed = append(closed, p)
		}
	}
	slices.SortStableFunc(open, byDeadline)
	open = open[:min(n, len(open))]
	slices.SortStableFunc(closed, func(a, b *gateway.Packet) int { return byDeadline(b, a) })
	closed = closed[:min(n-len(open), len(closed))]
	slices.SortStableFunc(closed, byDeadline)
	counts, err := c.g.Counts(q.r.Context(), q.s.who, "inbox")
	if err != nil {
		return nil, false, err
	}
	var total int64
	for st, k := range counts {
		if status == "" || st == status {
			total += k
		}
	}
	shown := append(open, closed...)
	return shown, total > int64(len(shown)), nil
}

// list reads one listing of at most BoxSize packets (or lq.Limit, if
// set) and says whether there were more.
func (c *Console) list(q *req, lq gateway.ListQuery) ([]*gateway.Packet, bool, error) {
	if lq.Limit == 0 {
		lq.Limit = c.cfg.BoxSize
	}
	page, err := c.g.List(q.r.Context(), q.s.who, lq)
	if err != nil {
		return nil, false, err
	}
	return page.Packets, page.NextCursor != "", nil
}

func byDeadline(a, b *gateway.Packet) int {
	if c := a.Deadline.Compare(b.Deadline); c != 0 {
		return c
	}
	return cmp.Compare(a.SubmittedSeq, b.SubmittedSeq)
}

// isOpen reports whether packets in status s still wait on the reviewer.
func isOpen(s string) bool {
	switch s {
	case gateway.StatusSubmitted, gateway.StatusReceived, gateway.StatusCorrectionRequested, gateway.StatusApproved:
		return true
	}
	return false
}

type newData struct {
	Items        []gateway.Item
	Item         *gateway.Item
	Destinations []gateway.Agency
}

func (c *Console) newPage(q *req) {
	d := newData{Items: c.g.Catalog().Items}
	if it, ok := c.g.Catalog().Item(q.r.URL.Query().Get("item")); ok {
		d.Item = it
		for _, a := range c.cfg.Agencies {
			if a.ID != q.s.who.Agency && a.Can(gateway.RoleReviewer) && it.AllowsDestination(a.ID) {
				d.Destinations = append(d.Destinations, a)
			}
		}
	}
	q.render(c, http.StatusOK, "new", tr(q.lang, "new"), d)
}

// upload runs an upload under the API's limits: it takes an upload slot
// (before reading the body), caps the body and guards its part headers,
// checks that the body opens with the CSRF token, and hands the rest to
// fn, streaming. next is where the user goes once fn has succeeded.
func (c *Console) upload(q *req, fn func(*multipart.Reader) (*gateway.Packet, error), next func(*gateway.Packet) string) {
	lim := c.cfg.Uploads
	if lim.Acquire != nil {
		release, ok := lim.Acquire(q.s.who)
		if !ok {
			q.w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(lim.RetryAfter.Seconds())))))
			q.answer(c, nil, "", problem{Status: http.StatusServiceUnavailable, Code: "busy", Message: "too many uploads in progress; retry later"})
			return
		}
		defer release()
	}
	failed := func() error { return nil }
	var guard func(io.Reader, string) io.Reader
	if lim.Guard != nil {
		guard = func(body io.Reader, boundary string) io.Reader {
			var guarded io.Reader
			guarded, failed = lim.Guard(body, boundary)
			return guarded
		}
	}
	mr, refused := upload.Open(q.w, q.r, c.cfg.MaxUploadBytes, guard)
	if refused != nil {
		q.answer(c, nil, "", problem{Status: refused.Status, Code: refused.Code, Message: refused.Message})
		return
	}
	part, err := mr.NextPart()
	if err != nil && failed() != nil {
		q.answer(c, nil, "", c.problemOf(failed()))
		return
	}
	if err != nil || part.FormName() != "csrf" {
		http.Error(q.w, "the CSRF token must be the first part", http.StatusForbidden)
		return
	}
	tok, _ := io.ReadAll(io.LimitReader(part, 256))
	if !q.checkCSRF(string(tok)) {
		return
	}
	p, err := fn(mr)
	if err != nil {
		if ferr := failed(); ferr != nil {
			err = ferr
		}
		q.answer(c, nil, "", c.problemOf(err))
		return
	}
	q.answer(c, p, next(p), problem{})
}

// wantsJSON tells the console's script (which asks for JSON) from a plain form post.
func (q *req) wantsJSON() bool { return strings.Contains(q.r.Header.Get("Accept"), "application/json") }

// answer ends an upload or action: for the script, JSON with where to go
// next or the problem; for a plain form, a redirect or an error page.
func (q *req) answer(c *Console, p *gateway.Packet, next string, pr problem) {
	if q.wantsJSON() {
		q.w.Header().Set("Content-Type", "application/json")
		if p == nil {
			q.w.WriteHeader(pr.Status)
			json.NewEncoder(q.w).Encode(map[string]problem{"error": pr})
			return
		}
		json.NewEncoder(q.w).Encode(map[string]string{"id": p.ID, "status": p.Status, "next": next})
		return
	}
	if p == nil {
		q.render(c, pr.Status, "error", tr(q.lang, "error"), pr)
		return
	}
	http.Redirect(q.w, q.r, next, http.StatusSeeOther)
}

func (c *Console) done(q *req, p *gateway.Packet, err error, next string) {
	if err != nil {
		q.answer(c, nil, "", c.problemOf(err))
		return
	}
	q.answer(c, p, next, problem{})
}

// submit takes csrf, then the manifest (built by the page's script from
// the form), then the files, and hands the stream to the gateway.
func (c *Console) submit(q *req) {
	c.upload(q, func(mr *multipart.Reader) (*gateway.Packet, error) {
		return c.g.Submit(q.r.Context(), q.s.who, nil, gateway.MultipartParts(mr))
	}, func(p *gateway.Packet) string { return Prefix + "packets/" + p.ID + "?receipt=1" })
}

// toPacket is where an upload to an existing packet returns.
func toPacket(p *gateway.Packet) string { return Prefix + "packets/" + p.ID }

func (c *Console) supplement(q *req) {
	c.upload(q, func(mr *multipart.Reader) (*gateway.Packet, error) {
		mr, stop := skipEmptyFiles(mr)
		defer stop()
		return c.g.Supplement(q.r.Context(), q.s.who, nil, q.r.PathValue("id"), gateway.MultipartParts(mr))
	}, toPacket)
}

func (c *Console) license(q *req) {
	c.upload(q, func(mr *multipart.Reader) (*gateway.Packet, error) {
		return c.g.IssueLicense(q.r.Context(), q.s.who, nil, q.r.PathValue("id"), gateway.MultipartParts(mr))
	}, toPacket)
}

func (c *Console) act(q *req) {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, 64<<10)
	if !q.checkCSRF(q.r.PostFormValue("csrf")) {
		return
	}
	id := q.r.PathValue("id")
	p, err := c.g.Act(q.r.Context(), q.s.who, nil, id, q.r.PostFormValue("action"), q.r.PostFormValue("reason"))
	c.done(q, p, err, Prefix+"packets/"+id)
}

// skipEmptyFiles drops the parts of file inputs left empty in a plain
// form, so that only chosen files reach the gateway. The returned stop
// ends the copy if the gateway stops reading early, and waits for it: the
// request body (and its guard) must not be read once the handler returns.
func skipEmptyFiles(mr *multipart.Reader) (*multipart.Reader, func()) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(func() error {
			for {
				part, err := mr.NextPart()
				if err == io.EOF {
					return mw.Close()
				}
				if err != nil {
					return err
				}
				var first [1]byte
				n, err := io.ReadFull(part, first[:])
				if n == 0 && errors.Is(err, io.EOF) && part.FileName() == "" {
					continue // an input with no file chosen
				}
				if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
				w, err := mw.CreatePart(part.Header)
				if err != nil {
					return err
				}
				if _, err := w.Write(first[:n]); err != nil {
					return err
				}
				if _, err := io.Copy(w, part); err != nil {
					return err
				}
			}
		}())
	}()
	return multipart.NewReader(pr, mw.Boundary()), func() {
		pr.Close()
		<-done
	}
}

type packetData struct {
	P          *gateway.Packet
	Applicant  *gateway.Applicant
	Receipt    bool
	IsOrigin   bool
	IsDest     bool
	CanBundle  bool
	Previewish map[string]bool // kinds that may be shown inline
	Kinds      []gateway.Material
}

func (c *Console) packet(q *req) {
	who := q.s.who
	p, err := c.g.Get(q.r.Context(), who, q.r.PathValue("id"))
	if err != nil {
		q.fail(c, err)
		return
	}
	d := packetData{P: p, Receipt: q.r.URL.Query().Get("receipt") == "1", Previewish: map[string]bool{},
		IsOrigin: who.Agency == p.Origin && who.Role == gateway.RoleSubmitter,
		IsDest:   who.Agency == p.Destination && who.Role == gateway.RoleReviewer}
	d.CanBundle = d.IsDest || who.Role == gateway.RoleAuditor
	if who.Agency == p.Origin || who.Agency == p.Destination {
		if d.Applicant, err = c.g.Applicant(q.r.Context(), who, p); err != nil {
			q.fail(c, err)
			return
		}
	}
	for _, m := range p.Materials {
		d.Previewish[m.Kind] = safeInline(m.ContentType)
	}
	if it, ok := c.g.Catalog().Item(p.Item); ok {
		d.Kinds = it.Materials
	}
	// History newest last, as recorded.
	q.render(c, http.StatusOK, "packet", p.ID, d)
}

// safeInline lists the types a browser may render inline from the console:
// plain raster images, which run no code. PDF and OFD are downloaded.
func safeInline(ct string) bool { return ct == gateway.TypePNG || ct == gateway.TypeJPEG }

func (c *Console) material(q *req) {
	kind := q.r.PathValue("kind")
	rc, ref, err := c.g.OpenMaterial(q.r.Context(), q.s.who, q.r.PathValue("id"), kind)
	if err != nil {
		q.fail(c, err)
		return
	}
	defer rc.Close()
	h := q.w.Header()
	h.Set("Content-Type", ref.ContentType)
	h.Set("Content-Length", strconv.FormatInt(ref.Size, 10))
	disp := "attachment"
	if q.r.URL.Query().Get("inline") == "1" && safeInline(ref.ContentType) {
		disp = "inline"
	}
	h.Set("Content-Disposition", disp+"; filename*=UTF-8''"+url.PathEscape(ref.Filename))
	h.Set("Content-Security-Policy", "default-src 'none'; img-src 'self'; sandbox")
	if _, err := io.Copy(q.w, rc); err != nil {
		c.log.Error("console: material stream failed", "err", err)
		panic(http.ErrAbortHandler)
	}
}

// bundle serves the bundle to the page's verifier. When the gateway
// refuses because a stored file failed its digest, the answer names the
// file, so the page can say which one was altered.
func (c *Console) bundle(q *req) {
	id := q.r.PathValue("id")
	pw := &pending{w: q.w}
	q.w.Header().Set("Content-Type", "application/zip")
	if err := c.g.WriteBundle(q.r.Context(), q.s.who, id, pw); err != nil {
		if pw.started {
			c.log.Error("console: bundle stream failed", "err", err)
			panic(http.ErrAbortHandler)
		}
		q.w.Header().Del("Content-Type")
		q.answerJSONError(c.problemOf(err), c.culprit(q, id, err))
	}
}

// culprit names the bundle file an integrity error is about; the packet is
// read only then (WriteBundle read it already, for every other answer).
func (c *Console) culprit(q *req, id string, err error) string {
	if !errors.Is(err, gateway.ErrIntegrity) {
		return ""
	}
	p, gerr := c.g.Get(q.r.Context(), q.s.who, id)
	if gerr != nil {
		return ""
	}
	return culprit(p, err)
}

// culprit names the bundle file whose stored object an integrity error
// is about, found by its digest in the gateway's message.
func culprit(p *gateway.Packet, err error) string {
	if !errors.Is(err, gateway.ErrIntegrity) {
		return ""
	}
	msg := err.Error()
	if p.License != nil && strings.Contains(msg, p.License.SHA256) {
		return "license/" + p.License.Filename
	}
	for _, m := range p.Materials {
		if strings.Contains(msg, m.SHA256) {
			return "materials/" + m.Kind + "/" + m.Filename
		}
	}
	if strings.Contains(msg, p.Manifest) {
		return "manifest.json"
	}
	return ""
}

func (q *req) answerJSONError(p problem, file string) {
	q.w.Header().Set("Content-Type", "application/json")
	q.w.WriteHeader(p.Status)
	json.NewEncoder(q.w).Encode(map[string]any{"error": p, "file": file})
}

// pending notes whether any byte was written.
type pending struct {
	w       io.Writer
	started bool
}

func (p *pending) Write(b []byte) (int, error) {
	p.started = p.started || len(b) > 0
	return p.w.Write(b)
}

func (c *Console) keyPage(q *req) {
	q.render(c, http.StatusOK, "key", tr(q.lang, "pin_key"), c.g.LedgerKey())
}
