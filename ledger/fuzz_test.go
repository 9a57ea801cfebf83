package ledger

import (
	"bytes"
	"testing"
)

func FuzzParseEntry(f *testing.F) {
	e := testEntry(1)
	raw, _ := e.Marshal()
	f.Add(raw)
	f.Add([]byte(`{"seq":0,"time":"2026-11-27T12:00:00Z","type":"t","actor":{"agency":"","role":""},"packet":"","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`))
	f.Add([]byte(`{"seq":1, "type":"x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntry(data)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("parsed entry does not marshal: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted non-canonical bytes:\n%s\n%s", data, again)
		}
		seq, prev, ok := peekSeqPrev(data)
		if !ok || seq != e.Seq || prev != e.Prev {
			t.Fatalf("peekSeqPrev = %d %s %v, entry has %d %s", seq, prev, ok, e.Seq, e.Prev)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("tongban.yrd/ledger\n42\nFP6vy1MTpVdPnS8oLrpaZsiQ2NLkmgqazsaBjH5IKQs=\n"))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nextension line\n"))
	f.Add([]byte("o\n-1\nxx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCheckpoint(data)
		if err != nil {
			return
		}
		// What parses must format back to the first three lines.
		if !bytes.HasPrefix(data, FormatCheckpoint(c)) {
			t.Fatalf("ParseCheckpoint(%q) = %+v, which formats differently", data, c)
		}
	})
}
