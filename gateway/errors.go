package gateway

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Errors the gateway returns, possibly wrapped; the API maps each to one
// HTTP status (in the comment). Test with errors.Is.
var (
	ErrMalformed   = errors.New("malformed request")                // 400
	ErrForbidden   = errors.New("forbidden")                        // 403
	ErrNotFound    = errors.New("not found")                        // 404
	ErrConflict    = errors.New("not allowed in the current state") // 409
	ErrTooLarge    = errors.New("too large")                        // 413
	ErrInvalid     = errors.New("validation failed")                // 422
	ErrIntegrity   = errors.New("stored data failed verification")  // 500, recorded in the ledger
	ErrUnavailable = errors.New("storage unavailable")              // 503
)

// ValidationError is a rejected request with a message per field, keyed by
// the field's JSON path ("applicant.id", "materials[1].sha256", or the
// material kind of a file part). Kind is one of the errors above
// (ErrInvalid unless a field was too large, of a refused type or malformed).
type ValidationError struct {
	Kind   error
	Fields map[string]string
}

func (e *ValidationError) Error() string {
	keys := slices.Sorted(maps.Keys(e.Fields))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return fmt.Sprintf("%v: %s", e.kind(), strings.Join(parts, "; "))
}

func (e *ValidationError) kind() error {
	if e.Kind == nil {
		return ErrInvalid
	}
	return e.Kind
}

// Unwrap lets errors.Is see the kind.
func (e *ValidationError) Unwrap() error { return e.kind() }

// fieldError returns a ValidationError of one field.
func fieldError(kind error, field, format string, a ...any) *ValidationError {
	return &ValidationError{Kind: kind, Fields: map[string]string{field: fmt.Sprintf(format, a...)}}
}

// fields collects per-field problems.
type fields map[string]string

// add records a problem of field; a field with several problems lists
// each once, so one answer names everything to fix.
func (f fields) add(field, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	switch old, ok := f[field]; {
	case !ok:
		f[field] = msg
	case !slices.Contains(strings.Split(old, "; "), msg):
		f[field] = old + "; " + msg
	}
}

func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Kind: ErrInvalid, Fields: f}
}
