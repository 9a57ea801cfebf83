package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
	"tongban/ledger"
)

func (s *server) ledgerKey(c *gin.Context) {
	c.String(http.StatusOK, s.g.LedgerKey()+"\n")
}

func (s *server) checkpoint(c *gin.Context) {
	cp, err := s.servedCheckpoint()
	if err != nil {
		fail(c, err)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", cp)
}

// entryView is a ledger entry as served: its fields, its canonical bytes
// (what the tree commits to) and its leaf hash.
type entryView struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Type    string          `json:"type"`
	Actor   ledger.Actor    `json:"actor"`
	Packet  string          `json:"packet"`
	Prev    ledger.Hash     `json:"prev"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Raw     []byte          `json:"raw"` // base64 of the canonical entry bytes
	Hash    ledger.Hash     `json:"leaf_hash"`
}

func viewOf(r *ledger.Record) entryView {
	return entryView{Seq: r.Seq, Time: r.Time, Type: r.Type, Actor: r.Actor, Packet: r.Packet, Prev: r.Prev, Payload: r.Payload, Raw: r.Raw, Hash: r.Hash}
}

// intParam parses a decimal query or path value.
func intParam(c *gin.Context, name, v string) (int64, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		failCode(c, http.StatusBadRequest, "malformed", name+" must be a non-negative integer", map[string]string{name: "not a non-negative integer: " + strconv.Quote(v)})
		return 0, false
	}
	return n, true
}

func (s *server) entry(c *gin.Context) {
	seq, ok := intParam(c, "seq", c.Param("seq"))
	if !ok {
		return
	}
	r, err := s.g.Entry(principal(c), seq)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, viewOf(r))
}

// entries lists a packet's entries (?packet=ID) or a range (?from=N&limit=M).
func (s *server) entries(c *gin.Context) {
	who := principal(c)
	var recs []*ledger.Record
	if pkt := c.Query("packet"); pkt != "" {
		var err error
		if recs, err = s.g.PacketEntries(who, pkt); err != nil {
			fail(c, err)
			return
		}
	} else {
		from, limit := int64(0), int64(100)
		var ok bool
		if v := c.Query("from"); v != "" {
			if from, ok = intParam(c, "from", v); !ok {
				return
			}
		}
		if v := c.Query("limit"); v != "" {
			if limit, ok = intParam(c, "limit", v); !ok {
				return
			}
		}
		var err error
		if recs, err = s.g.EntryRange(c.Request.Context(), who, from, min(max(limit, 1), 1000)); err != nil {
			fail(c, err)
			return
		}
	}
	out := make([]entryView, len(recs))
	for i, r := range recs {
		out[i] = viewOf(r)
	}
	c.JSON(http.StatusOK, gin.H{"entries": out})
}

func (s *server) inclusion(c *gin.Context) {
	seq, ok := intParam(c, "seq", c.Query("seq"))
	if !ok {
		return
	}
	size := int64(-1)
	if v := c.Query("size"); v != "" {
		if size, ok = intParam(c, "size", v); !ok {
			return
		}
	}
	if size < 0 {
		size = s.g.LedgerSize()
	}
	p, err := s.g.Inclusion(principal(c), seq, size)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *server) consistency(c *gin.Context) {
	from, ok := intParam(c, "from", c.Query("from"))
	if !ok {
		return
	}
	to := int64(-1)
	if v := c.Query("to"); v != "" {
		if to, ok = intParam(c, "to", v); !ok {
			return
		}
	}
	if to < 0 {
		to = s.g.LedgerSize()
	}
	p, err := s.g.Consistency(principal(c), from, to)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

// verify runs the full ledger check. With ?progress=1 (or Accept:
// application/x-ndjson) it streams progress lines, then the report.
func (s *server) verify(c *gin.Context) {
	who := principal(c)
	if who.Role != gateway.RoleAuditor {
		fail(c, gateway.ErrForbidden)
		return
	}
	var req struct {
		Scrub bool `json:"scrub"`
	}
	if c.Request.ContentLength != 0 && c.GetHeader("Content-Type") != "" && !s.readJSON(c, &req) {
		return
	}
	req.Scrub = req.Scrub || c.Query("scrub") == "1"
	stream := c.Query("progress") == "1" || c.GetHeader("Accept") == "application/x-ndjson"
	var progress func(done, total int64)
	if stream {
		c.Header("Content-Type", "application/x-ndjson")
		c.Status(http.StatusOK)
		enc := json.NewEncoder(c.Writer)
		last := time.Time{}
		progress = func(done, total int64) {
			if time.Since(last) < 250*time.Millisecond && done < total {
				return
			}
			last = time.Now()
			enc.Encode(gin.H{"done": done, "total": total})
			c.Writer.Flush()
		}
	}
	rep, err := s.g.VerifyLedger(c.Request.Context(), who, progress)
	if err != nil {
		if stream {
			json.NewEncoder(c.Writer).Encode(gin.H{"error": err.Error()})
			return
		}
		fail(c, err)
		return
	}
	out := verifyResponse{VerifyReport: rep}
	if req.Scrub && rep.OK {
		if out.Scrub, err = s.g.Scrub(c.Request.Context(), who, progress); err != nil {
			if stream {
				json.NewEncoder(c.Writer).Encode(gin.H{"error": err.Error()})
				return
			}
			fail(c, err)
			return
		}
		out.OK = len(out.Scrub.Missing)+len(out.Scrub.Corrupt) == 0
	}
	if !out.OK {
		s.metrics.verifyFailures.Add(1)
	}
	if stream {
		json.NewEncoder(c.Writer).Encode(out)
		return
	}
	c.JSON(http.StatusOK, out)
}

// verifyResponse is the ledger check and, if asked, the storage scrub.
type verifyResponse struct {
	*gateway.VerifyReport
	Scrub *gateway.ScrubReport `json:"scrub,omitempty"`
}
