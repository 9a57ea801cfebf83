package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tongban/api/internal/upload"
	"tongban/gateway"
	"tongban/gateway/strictjson"
	"tongban/gateway/workday"
)

func (s *server) catalog(c *gin.Context) {
	c.JSON(http.StatusOK, s.g.Catalog())
}

// multipartBody returns the body's parts for the gateway, streaming, the
// body capped at MaxUploadBytes, and the guard of its part headers (whose
// error, once it fails, is the cause of the parts' errors).
func (s *server) multipartBody(c *gin.Context) (gateway.Parts, *partHeaderGuard, bool) {
	var guard *partHeaderGuard
	mr, refused := upload.Open(c.Writer, c.Request, s.cfg.MaxUploadBytes, func(body io.Reader, boundary string) io.Reader {
		guard = newPartHeaderGuard(body, boundary, s.cfg.MaxPartHeaderBytes, s.cfg.MaxPartHeadersTotal)
		return guard
	})
	if refused != nil {
		failCode(c, refused.Status, refused.Code, refused.Message, nil)
		return nil, nil, false
	}
	return gateway.MultipartParts(mr), guard, true
}

func (s *server) submit(c *gin.Context) {
	if err := s.g.Recovering(); err != nil {
		fail(c, err) // before the body is read and stored
		return
	}
	parts, guard, ok := s.multipartBody(c)
	if !ok {
		return
	}
	p, err := s.g.Submit(c.Request.Context(), principal(c), idemOf(c), parts)
	if err != nil {
		fail(c, guard.cause(err))
		return
	}
	s.metrics.storedBytes.Add(packetBytes(p))
	c.Header("Location", "/v1/packets/"+p.ID)
	c.JSON(http.StatusCreated, s.answerWrite(c, p, p.LastSeq))
}

func packetBytes(p *gateway.Packet) int64 {
	var n int64
	for _, m := range p.Materials {
		n += m.Size
	}
	return n
}

func (s *server) supplement(c *gin.Context) {
	parts, guard, ok := s.multipartBody(c)
	if !ok {
		return
	}
	p, err := s.g.Supplement(c.Request.Context(), principal(c), idemOf(c), c.Param("id"), parts)
	if err != nil {
		fail(c, guard.cause(err))
		return
	}
	c.JSON(http.StatusOK, s.answerWrite(c, p, p.LastSeq))
}

func (s *server) license(c *gin.Context) {
	parts, guard, ok := s.multipartBody(c)
	if !ok {
		return
	}
	p, err := s.g.IssueLicense(c.Request.Context(), principal(c), idemOf(c), c.Param("id"), parts)
	if err != nil {
		fail(c, guard.cause(err))
		return
	}
	c.JSON(http.StatusOK, s.answerWrite(c, p, p.LastSeq))
}

func (s *server) list(c *gin.Context) {
	q := gateway.ListQuery{
		Box: c.Query("box"), Status: c.Query("status"), Item: c.Query("item"),
		Origin: c.Query("origin"), Destination: c.Query("destination"), Cursor: c.Query("cursor"),
	}
	var err error
	if q.Limit, err = queryInt(c, "limit"); err != nil {
		fail(c, err)
		return
	}
	for name, t := range map[string]*time.Time{"from": &q.From, "to": &q.To} {
		if *t, err = queryTime(c, name); err != nil {
			fail(c, err)
			return
		}
	}
	if v, ok := c.GetQuery("overdue"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			fail(c, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: map[string]string{"overdue": "must be true or false"}})
			return
		}
		q.Overdue = &b
	}
	switch c.Query("format") {
	case "", "json":
	case "csv":
		s.listCSV(c, q)
		return
	default:
		fail(c, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: map[string]string{"format": "must be json or csv"}})
		return
	}
	page, err := s.g.List(c.Request.Context(), principal(c), q)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

// queryInt reads an optional integer query parameter; 0 if absent.
func queryInt(c *gin.Context, name string) (int, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: map[string]string{name: "must be a positive integer"}}
	}
	return n, nil
}

// queryTime reads an optional date (2006-01-02, midnight in Shanghai) or
// RFC 3339 time.
func queryTime(c *gin.Context, name string) (time.Time, error) {
	v, ok := c.GetQuery(name)
	if !ok {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, workday.Shanghai); err == nil {
		return t, nil
	}
	return time.Time{}, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: map[string]string{name: "must be a date (2006-01-02) or an RFC 3339 time"}}
}

func (s *server) counts(c *gin.Context) {
	n, err := s.g.Counts(c.Request.Context(), principal(c), c.Query("box"))
	if err != nil {
		fail(c, err)
		return
	}
	var total int64
	for _, v := range n {
		total += v
	}
	c.JSON(http.StatusOK, gin.H{"counts": n, "total": total})
}

func (s *server) history(c *gin.Context) {
	limit, err := queryInt(c, "limit")
	if err != nil {
		fail(c, err)
		return
	}
	h, err := s.g.History(c.Request.Context(), principal(c), c.Param("id"), c.Query("cursor"), limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h)
}

// packetView is a packet with, for its origin and destination, the applicant.
type packetView struct {
	*gateway.Packet
	Applicant *gateway.Applicant `json:"applicant,omitempty"`
}

func (s *server) get(c *gin.Context) {
	who := principal(c)
	p, err := s.g.Get(c.Request.Context(), who, c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	v := packetView{Packet: p}
	if who.Agency == p.Origin || who.Agency == p.Destination {
		if v.Applicant, err = s.g.Applicant(c.Request.Context(), who, p); err != nil {
			fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, v)
}

func (s *server) material(c *gin.Context) {
	rc, ref, err := s.g.OpenMaterial(c.Request.Context(), principal(c), c.Param("id"), c.Param("kind"))
	if err != nil {
		fail(c, err)
		return
	}
	defer rc.Close()
	h := c.Writer.Header()
	h.Set("Content-Type", ref.ContentType)
	h.Set("Content-Length", strconv.FormatInt(ref.Size, 10))
	h.Set("Content-Disposition", contentDisposition(ref.Filename))
	h.Set("X-Content-SHA256", ref.SHA256)
	c.Status(http.StatusOK)
	if _, err := io.Copy(c.Writer, rc); err != nil {
		// The bytes were verified before sending and are verified again as
		// they stream; if they fail now, break the response rather than
		// end it cleanly.
		s.log.Error("material stream failed", "request_id", requestID(c), "err", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *server) bundle(c *gin.Context) {
	id := c.Param("id")
	h := c.Writer.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", contentDisposition(id+".zip"))
	if err := s.g.WriteBundle(c.Request.Context(), principal(c), id, c.Writer); err != nil {
		if !c.Writer.Written() { // nothing sent yet: a proper error answer
			h.Del("Content-Type")
			h.Del("Content-Disposition")
			fail(c, err)
			return
		}
		s.log.Error("bundle stream failed", "request_id", requestID(c), "err", err)
		panic(http.ErrAbortHandler)
	}
}

type actionRequest struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
}

// readJSON decodes a small JSON body into v.
func (s *server) readJSON(c *gin.Context, v any) bool {
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt != "application/json" {
		failCode(c, http.StatusUnsupportedMediaType, "unsupported_type", "the body must be application/json", nil)
		return false
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxJSONBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		failCode(c, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxJSONBytes), nil)
		return false
	}
	if err != nil {
		failCode(c, http.StatusBadRequest, "malformed", "could not read the body", nil)
		return false
	}
	if err := strictjson.Unmarshal(b, v); err != nil {
		failCode(c, http.StatusBadRequest, "malformed", fmt.Sprintf("the body is not the expected JSON object: %v", err), nil)
		return false
	}
	return true
}

func (s *server) act(c *gin.Context) {
	var req actionRequest
	if !s.readJSON(c, &req) {
		return
	}
	p, err := s.g.Act(c.Request.Context(), principal(c), idemOf(c), c.Param("id"), req.Action, req.Reason)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, s.answerWrite(c, p, p.LastSeq))
}
