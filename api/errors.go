package api

import (
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/gin-gonic/gin"

	"tongban/gateway"
	"tongban/ledger"
)

// errorBody is the JSON error format of every non-2xx answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string            `json:"code"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
}

// status maps an error to its HTTP status and stable code. It is the one
// place where the domain's errors meet HTTP.
func status(err error) (int, string) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, "request_timeout"
	case errors.As(err, &mbe), errors.Is(err, gateway.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, gateway.ErrMalformed):
		return http.StatusBadRequest, "malformed"
	case errors.Is(err, gateway.ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, gateway.ErrNotFound):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, gateway.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, gateway.ErrUnsupportedType):
		return http.StatusUnsupportedMediaType, "unsupported_type"
	case errors.Is(err, gateway.ErrInvalid):
		return http.StatusUnprocessableEntity, "invalid"
	case errors.Is(err, gateway.ErrUnavailable), errors.Is(err, ledger.ErrClosed):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, gateway.ErrIntegrity):
		return http.StatusInternalServerError, "integrity_violation"
	}
	return http.StatusInternalServerError, "internal"
}

// fail answers err in the JSON error format. Messages of internal errors
// are logged, never sent: they may name paths, hosts or keys.
func fail(c *gin.Context, err error) {
	code, name := status(err)
	d := errorDetail{Code: name, Message: err.Error(), RequestID: requestID(c)}
	var ve *gateway.ValidationError
	if errors.As(err, &ve) {
		d.Fields = ve.Fields
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		// Network errors name addresses; the client knows its connection.
		d.Message = "the connection failed while the request body was read"
	}
	switch code {
	case http.StatusRequestTimeout:
		d.Message = "the client sent nothing for too long; the request was dropped"
	case http.StatusInternalServerError:
		logger(c).ErrorContext(c.Request.Context(), "request failed", "request_id", d.RequestID, "err", err)
		if name == "internal" {
			d.Message = "internal error; see the gateway's log under this request id"
		}
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", "5")
		logger(c).WarnContext(c.Request.Context(), "backend unavailable", "request_id", d.RequestID, "err", err)
		d.Message = "storage or ledger unavailable; retry later"
	}
	c.AbortWithStatusJSON(code, errorBody{Error: d})
}

// failCode answers a status and code with a message of its own.
func failCode(c *gin.Context, code int, name, msg string, fields map[string]string) {
	c.AbortWithStatusJSON(code, errorBody{Error: errorDetail{Code: name, Message: msg, Fields: fields, RequestID: requestID(c)}})
}

const loggerKey = "tongban.logger"

// logger returns the server's logger for a request.
func logger(c *gin.Context) *slog.Logger {
	if l, ok := c.Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
