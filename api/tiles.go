package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"filippo.io/torchwood"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"tongban/ledger"
	"tongban/ledger/cosign"
)

// RoleMirror is the role of a read-only follower of the log (a region's
// mirror or monitor): it may read the checkpoint and the tiles, nothing else.
const RoleMirror = "mirror"

// Cache lifetimes of the tiles API: a full tile never changes; a partial
// tile and the checkpoint change as the log grows.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=5"
)

// tlogCheckpoint serves the checkpoint of the tiles API: the same as
// GET /v1/ledger/checkpoint.
func (s *server) tlogCheckpoint(c *gin.Context) {
	cp, err := s.servedCheckpoint()
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", cacheShort)
	c.Data(http.StatusOK, "text/plain; charset=utf-8", cp)
}

// servedCheckpoint is the log's newest signed checkpoint with the
// cosignatures gathered for it so far (none without witnesses).
func (s *server) servedCheckpoint() ([]byte, error) {
	if s.cfg.Witnesses != nil {
		return s.cfg.Witnesses.Checkpoint()
	}
	return s.g.Checkpoint()
}

// tile serves C2SP tlog-tiles hash tiles (tile/<L>/<N>[.p/<W>]) and entry
// bundles (tile/entries/<N>[.p/<W>]) from the stored tree.
func (s *server) tile(c *gin.Context) {
	l := s.cfg.Ledger
	if l == nil {
		failCode(c, http.StatusNotFound, "not_found", "this gateway does not serve tiles", nil)
		return
	}
	path := "tile" + c.Param("tile")
	t, err := torchwood.ParseTilePath(path)
	if err != nil || t.W < 1 || t.W > torchwood.TileWidth {
		failCode(c, http.StatusNotFound, "not_found", "not a tile path: "+strconv.Quote(path), nil)
		return
	}
	if torchwood.TilePath(t) != path { // one name per tile: no leading zeros or full widths as partial
		failCode(c, http.StatusNotFound, "not_found", "not a canonical tile path: "+strconv.Quote(path), nil)
		return
	}
	var data []byte
	if t.L == -1 {
		data, err = l.EntryBundle(c.Request.Context(), t.N*torchwood.TileWidth, int64(t.W))
	} else {
		data, err = l.ReadTileData(t)
	}
	if errors.Is(err, ledger.ErrNotFound) {
		failCode(c, http.StatusNotFound, "not_found", "no such tile in the current tree", nil)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if t.W == torchwood.TileWidth {
		c.Header("Cache-Control", cacheImmutable)
	} else {
		c.Header("Cache-Control", cacheShort)
	}
	c.Data(http.StatusOK, "application/octet-stream", data)
}

// refuseUnwitnessed refuses writes once entries have waited longer than
// the grace for a quorum of cosignatures (see cosign.Gatherer.WriteErr).
func (s *server) refuseUnwitnessed(c *gin.Context) {
	if s.cfg.Witnesses == nil || c.Request.Method != http.MethodPost || strings.HasPrefix(c.FullPath(), "/v1/ledger/") {
		c.Next()
		return
	}
	if err := s.cfg.Witnesses.WriteErr(); err != nil {
		s.log.Warn("write refused: witnesses out of reach", "request_id", requestID(c), "err", err)
		c.Header("Retry-After", "30")
		failCode(c, http.StatusServiceUnavailable, "witnesses_unavailable",
			"the ledger's witnesses have not cosigned for too long; writes resume when they do", nil)
		return
	}
	c.Next()
}

// witnessCollector reports each witness's lag and failures.
type witnessCollector struct{ g *cosign.Gatherer }

var (
	descWLag      = prometheus.NewDesc("tongban_witness_lag_entries", "Entries between the newest checkpoint and what the witness last cosigned.", []string{"witness"}, nil)
	descWFailures = prometheus.NewDesc("tongban_witness_failures_total", "Requests to the witness that did not yield a valid cosignature.", []string{"witness"}, nil)
	descWLastOK   = prometheus.NewDesc("tongban_witness_last_success_timestamp_seconds", "When the witness last cosigned (Unix time; 0: not since start).", []string{"witness"}, nil)
	descWUp       = prometheus.NewDesc("tongban_witness_up", "1 if the witness's latest answer was a valid cosignature.", []string{"witness"}, nil)
	descQuorumLag = prometheus.NewDesc("tongban_witness_quorum_lag_entries", "Entries not yet covered by a checkpoint with a quorum of cosignatures.", nil, nil)
)

func (w witnessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWLag, descWFailures, descWLastOK, descWUp, descQuorumLag} {
		ch <- d
	}
}

func (w witnessCollector) Collect(ch chan<- prometheus.Metric) {
	ws, target, quorum := w.g.Status()
	for _, x := range ws {
		up, last := 0.0, 0.0
		if x.OK {
			up = 1
		}
		if !x.LastOK.IsZero() {
			last = float64(x.LastOK.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descWLag, prometheus.GaugeValue, float64(x.Lag), x.Name)
		ch <- prometheus.MustNewConstMetric(descWFailures, prometheus.CounterValue, float64(x.Failures), x.Name)
		ch <- prometheus.MustNewConstMetric(descWLastOK, prometheus.GaugeValue, last, x.Name)
		ch <- prometheus.MustNewConstMetric(descWUp, prometheus.GaugeValue, up, x.Name)
	}
	ch <- prometheus.MustNewConstMetric(descQuorumLag, prometheus.GaugeValue, float64(max(0, target-quorum)))
}
