package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
)

// written is the answer to a write: the packet as it now stands and the
// receipt of the entry the write appended (docs/formats.md, "Receipts").
type written struct {
	*gateway.Packet
	Receipt string `json:"receipt,omitempty"`
}

// answerWrite adds the receipt of entry seq to a write's answer. The write
// is durable already: should the receipt fail, the answer goes without it
// (GET .../receipts/{seq} gives it later) and the failure is logged.
func (s *server) answerWrite(c *gin.Context, p *gateway.Packet, seq int64) written {
	r, err := s.g.Receipt(c.Request.Context(), principal(c), p.ID, seq)
	if err != nil {
		s.log.Error("receipt not made", "request_id", requestID(c), "packet", p.ID, "seq", seq, "err", err)
		return written{Packet: p}
	}
	return written{Packet: p, Receipt: string(r)}
}

// receipt serves GET /v1/packets/{id}/receipts/{seq}: the C2SP tlog-proof
// of one of the packet's entries, as text; with ?witnessed=true, proven into
// the newest checkpoint a quorum of the witnesses cosigned.
func (s *server) receipt(c *gin.Context) {
	raw := c.Param("seq")
	seq, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != raw {
		failCode(c, http.StatusBadRequest, "malformed", "seq must be a plain decimal entry number", nil)
		return
	}
	get := s.g.Receipt
	switch c.Query("witnessed") {
	case "", "false":
	case "true":
		get = s.g.WitnessedReceipt
	default:
		failCode(c, http.StatusBadRequest, "malformed", "witnessed must be true or false", nil)
		return
	}
	r, err := get(c.Request.Context(), principal(c), c.Param("id"), seq)
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", r)
}
