package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"tongban/ledger/format"
)

// TestAppendRefusesNonCanonicalPayload: a payload in any spelling but the
// canonical one is refused, and nothing is appended.
func TestAppendRefusesNonCanonicalPayload(t *testing.T) {
	l := openTest(t, t.TempDir())
	for _, p := range []string{
		`{"b":1,"a":2}`, `{"a": 1}`, `{"a":1,"a":1}`, `{"a":1.0}`, `{"a":1e2}`, `{"a":"\u0041"}`,
		`{"a":"\u003c"}`, "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":-0}`,
	} {
		_, err := l.Append(context.Background(), Entry{Type: "x", Packet: "p", Payload: json.RawMessage(p)})
		if !errors.Is(err, format.ErrPayloadNotCanonical) {
			t.Errorf("%s: Append said %v", p, err)
		}
	}
	if l.Size() != 0 {
		t.Fatalf("refused payloads changed the size to %d", l.Size())
	}
	rec := mustAppend(t, l, Entry{Type: "x", Packet: "p", Payload: json.RawMessage(`{"a":2,"b":"<中>"}`)})
	if string(rec.Payload) != `{"a":2,"b":"<中>"}` {
		t.Fatalf("payload stored as %s", rec.Payload)
	}
}
