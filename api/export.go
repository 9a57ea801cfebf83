package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
	"tongban/gateway/packetcsv"
)

// listCSV answers GET /v1/packets?format=csv: every packet the listing q
// selects, as CSV, read from the gateway a page at a time and sent as it
// is read, so memory stays bounded by one page whatever the size of the
// export. Authorisation is the listing's: an agency's own boxes, or all
// packets for auditors. The applicant's name is filled for the packet's
// origin and destination only, as on GET /v1/packets/:id.
func (s *server) listCSV(c *gin.Context, q gateway.ListQuery) {
	if _, ok := c.GetQuery("limit"); ok || q.Cursor != "" {
		fail(c, &gateway.ValidationError{Kind: gateway.ErrMalformed, Fields: map[string]string{
			"format": "a CSV export holds every matching packet: it takes no limit or cursor"}})
		return
	}
	ctx, who := c.Request.Context(), principal(c)
	q.Limit = s.cfg.ExportPageSize
	page, err := s.g.List(ctx, who, q)
	if err != nil {
		fail(c, err) // nothing sent yet: a proper error answer
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", packetcsv.ContentType)
	h.Set("Content-Disposition", contentDisposition("packets.csv"))
	c.Status(http.StatusOK)
	applicant := func(p *gateway.Packet) (*gateway.Applicant, error) {
		if who.Agency != p.Origin && who.Agency != p.Destination {
			return nil, nil
		}
		return s.g.Applicant(ctx, who, p)
	}
	if err := packetcsv.Export(ctx, s.g.List, who, q, page, c.Writer, c.Writer.Flush, applicant); err != nil {
		s.abortExport(c, err)
	}
}

// abortExport breaks a CSV export that failed after its first bytes, so
// that the client sees a broken transfer rather than a short file that
// looks complete.
func (s *server) abortExport(c *gin.Context, err error) {
	s.log.Error("CSV export failed", "request_id", requestID(c), "err", err)
	panic(http.ErrAbortHandler)
}
