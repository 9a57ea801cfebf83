package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestSealMatchesMarshal: an entry sealed by a sequencer has exactly the
// bytes Marshal gives it, whatever its names, payload, seq and time.
func TestSealMatchesMarshal(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	times := []time.Time{
		time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 20, 0, 0, 123456789, shanghai),
		time.Date(9999, 12, 31, 23, 59, 59, 100, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	entries := []Entry{
		{Type: "packet.submitted", Actor: Actor{"jiashan-window", "submitter"}, Packet: "pkt-1",
			Payload: json.RawMessage(`{ "sha256" : "9f86", "n": [1, 2, {"a": null}] }`)},
		{Type: "x"},
		{Type: `q"uote\back<&>`, Actor: Actor{"青浦区", "\u2028\t"}, Packet: `"prev":"`,
			Payload: json.RawMessage("\n\t{\"prev\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"html\":\"<&>\"}\n")},
		{Type: "x", Payload: json.RawMessage(`{}`)},
		{Type: "x", Payload: json.RawMessage(`{"big":"` + strings.Repeat("a", MaxEntrySize-400) + `"}`)},
	}
	// Names encoding/json escapes in its own ways, with canonical payloads
	// (NewCanonicalUnsequenced's own encoding and its way back to encoding/json).
	for _, name := range []string{"\u2028", "a\u2029b", "\xff\xfe", "\x00\x01\x1f\x7f", `<&>'"\\/`, "\b\f\n\r\t", "青浦区窗口"} {
		entries = append(entries,
			Entry{Type: name, Actor: Actor{name, "submitter"}, Packet: strings.ReplaceAll(name, "\x00", ""), Payload: json.RawMessage(`{"a":"<&>","b":[1,{"c":null}]}`)},
			Entry{Type: "x", Actor: Actor{"jiashan", name}, Packet: "p"})
	}
	entries = append(entries, Entry{Type: "x", Payload: json.RawMessage(`{"big":"` + strings.Repeat("a", MaxEntrySize-170) + `"}`)})
	// Around the size limit, where seq and time decide.
	for pad := MaxEntrySize - 260; pad < MaxEntrySize-170; pad += 3 {
		entries = append(entries, Entry{Type: "x", Payload: json.RawMessage(`{"big":"` + strings.Repeat("a", pad) + `"}`)})
	}
	prev := LeafHash([]byte("previous"))
	for i, e := range entries {
		u, err := NewUnsequenced(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		cu, err := NewCanonicalUnsequenced(e)
		if (err == nil) != (CheckPayload(e.Payload) == nil) {
			t.Fatalf("entry %d: NewCanonicalUnsequenced: %v; CheckPayload: %v", i, err, CheckPayload(e.Payload))
		}
		for _, seq := range []int64{0, 7, 1<<63 - 1} {
			for _, tm := range times {
				e.Seq, e.Time, e.Prev = seq, tm, prev
				want, werr := e.Marshal()
				got, gerr := u.Seal([]byte("keep"), seq, tm, prev)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("entry %d seq %d time %v: Marshal error %v, Seal error %v", i, seq, tm, werr, gerr)
				}
				if !bytes.HasPrefix(got, []byte("keep")) {
					t.Fatalf("Seal lost dst")
				}
				if len(got)-4 > u.MaxSize() {
					t.Fatalf("entry %d: Seal wrote %d bytes, MaxSize %d", i, len(got)-4, u.MaxSize())
				}
				if werr == nil && !bytes.Equal(got[4:], want) {
					t.Fatalf("entry %d seq %d time %v:\nSeal    %s\nMarshal %s", i, seq, tm, got[4:], want)
				}
				if cu != nil {
					cgot, cerr := cu.Seal(nil, seq, tm, prev)
					if (werr == nil) != (cerr == nil) || werr == nil && !bytes.Equal(cgot, want) {
						t.Fatalf("entry %d seq %d time %v: canonical Seal %q (%v)\nMarshal %q (%v)", i, seq, tm, cgot, cerr, want, werr)
					}
				}
			}
		}
	}
	for _, bad := range []Entry{{}, {Type: "x", Payload: json.RawMessage(`[1]`)}, {Type: "x", Payload: json.RawMessage(`{"a":`)}, {Type: "x", Payload: json.RawMessage(`   `)}} {
		if _, err := NewUnsequenced(bad); err == nil {
			t.Errorf("NewUnsequenced accepted %+v", bad)
		}
	}
}
