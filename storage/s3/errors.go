package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/minio/minio-go/v7"

	"tongban/storage"
)

// fail translates a minio-go error at the edge into the storage errors the
// gateway understands, keeping the cause in the chain and the message.
func fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case isNotFound(err):
		return fmt.Errorf("%w: storage/s3: %s: %w", storage.ErrNotFound, op, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: storage/s3: %s: %w", storage.ErrUnavailable, op, err)
	}
	return fmt.Errorf("storage/s3: %s: %w", op, err)
}

func isNotFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == "NoSuchKey" || r.Code == "NoSuchObject"
}

// isUnavailable reports errors that say the server cannot be reached or
// cannot serve now, as opposed to a refused request: transport failures,
// timeouts, 5xx answers and a missing bucket (an operator must act).
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; the server may be fine
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode >= http.StatusInternalServerError || r.Code == "SlowDown" || r.Code == "NoSuchBucket" {
		return true
	}
	var ne net.Error // *url.Error is one too
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
