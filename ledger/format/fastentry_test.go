package format

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canonicalSamples are canonical entries of many shapes: names with
// characters JSON escapes, non-ASCII, times with and without fractions,
// payloads absent, empty, nested and with strings that need escaping.
func canonicalSamples(t testing.TB) [][]byte {
	names := []string{"packet.submitted", "a", strings.Repeat("x", 256), `q"uote`, `back\slash`, "tab\t", "<&>", "青浦", "\u2028", "~ !#$%&'()*+,-./:;<=>?@[]^_`{|}"}
	times := []time.Time{
		time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 30, 1, 2, 3, 500_000_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
	}
	payloads := []string{"", `{}`, `{"n":1}`, `{"a":[1,2,{"b":null}],"s":"x\"y\\z\u00e9<>&","f":-1.5e3,"t":true}`, `{"青浦":"吴江"}`}
	var out [][]byte
	for i := range 400 {
		e := Entry{
			Seq:     []int64{0, 1, 9, 10, 1<<63 - 1, 123456789}[i%6],
			Time:    times[i%len(times)],
			Type:    names[i%len(names)],
			Actor:   Actor{Agency: names[(i+1)%len(names)], Role: names[(i/3)%len(names)]},
			Packet:  names[(i/7)%len(names)],
			Payload: json.RawMessage(payloads[i%len(payloads)]),
		}
		e.Prev[0], e.Prev[31] = byte(i), byte(i*7)
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		out = append(out, b)
	}
	return out
}

// checkAgrees fails unless readCanonical accepts only what parseEntry
// accepts, decoding it to the same entry.
func checkAgrees(t testing.TB, data []byte) (fast bool) {
	e, ok := readCanonical(data)
	want, err := parseEntry(data)
	switch {
	case ok && err != nil:
		t.Fatalf("readCanonical accepts %q, which parseEntry refuses: %v", data, err)
	case ok && !reflect.DeepEqual(e, want):
		t.Fatalf("readCanonical reads %q as\n%#v\nparseEntry as\n%#v", data, e, want)
	}
	if got, perr := ParseEntry(data); (perr == nil) != (err == nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseEntry(%q) = %v, %v; parseEntry: %v, %v", data, got, perr, want, err)
	}
	return ok
}

// TestFastEntryAgrees holds ParseEntry's fast path to parseEntry
// on canonical entries and on every one of many mutations of them.
func TestFastEntryAgrees(t *testing.T) {
	samples := canonicalSamples(t)
	plain := func(s string) bool {
		return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '"' || r == '\\' })
	}
	fast := 0
	for _, b := range samples {
		e, _ := parseEntry(b)
		// The gateway's own entries (ASCII names) must take the fast path.
		want := plain(e.Type) && plain(e.Actor.Agency) && plain(e.Actor.Role) && plain(e.Packet)
		if got := checkAgrees(t, b); got != want {
			t.Fatalf("fast path taken: %v, want %v, for %s", got, want, b)
		}
		if want {
			fast++
		}
	}
	if fast < 20 || fast == len(samples) {
		t.Fatalf("%d of %d samples take the fast path: the samples do not test both paths", fast, len(samples))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("{}[]\":,.0123456789-+eE \t\n\\/ZTazA=u\x00\x7f\xc3\xa9")
	for i := range 50_000 {
		b := []byte(string(samples[rng.IntN(len(samples))]))
		for range 1 + rng.IntN(3) {
			p := rng.IntN(len(b) + 1)
			switch rng.IntN(3) {
			case 0: // replace
				if p < len(b) {
					b[p] = alphabet[rng.IntN(len(alphabet))]
				}
			case 1: // insert
				b = append(b[:p], append([]byte{alphabet[rng.IntN(len(alphabet))]}, b[p:]...)...)
			case 2: // delete
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			}
		}
		if t.Failed() {
			t.Fatalf("after %d mutations", i)
		}
		checkAgrees(t, b)
	}
	// Spellings that decode to the same entry but are not canonical.
	for _, c := range []struct{ from, to string }{
		{`{"seq":`, `{"seq":0`}, {`{"seq":`, `{"seq":-`}, {`{"seq":`, `{ "seq":`},
		{`"time":"2026-11-30T00:00:00Z"`, `"time":"2026-11-30T00:00:00.0Z"`},
		{`"time":"2026-11-30T00:00:00Z"`, `"time":"2026-11-30T08:00:00+08:00"`},
		{`"time":"2026-11-30T00:00:00Z"`, `"time":"2026-11-30t00:00:00z"`},
		{`"payload":{"n":1}`, `"payload":{"n": 1}`}, {`"payload":{"n":1}`, `"payload":null`},
		{`"type":"`, `"Type":"`}, {`,"packet":`, `,"packet":"x","packet":`},
	} {
		for _, s := range samples {
			if strings.Contains(string(s), c.from) {
				b := []byte(strings.Replace(string(s), c.from, c.to, 1))
				if _, ok := readCanonical(b); ok {
					t.Errorf("readCanonical accepts %s", b)
				}
				checkAgrees(t, b)
			}
		}
	}
	// A prev hash in another spelling of the same bytes (non-zero padding bits).
	s := string(samples[0])
	i := strings.Index(s, `"prev":"`) + len(`"prev":"`)
	b := []byte(s)
	b[i+42] = map[byte]byte{'A': 'B', 'Q': 'R', 'g': 'h', 'w': 'x'}[b[i+42]]
	if b[i+42] == 0 {
		t.Fatalf("unexpected prev spelling in %s", s)
	}
	if _, ok := readCanonical(b); ok {
		t.Errorf("readCanonical accepts %s", b)
	}
	checkAgrees(t, b)
}

// FuzzFastEntry: go test ./ledger/format -run XXX -fuzz FuzzFastEntry
func FuzzFastEntry(f *testing.F) {
	for _, b := range canonicalSamples(f) {
		f.Add(b)
	}
	f.Add([]byte(fmt.Sprintf(`{"seq":1,"time":"2026-11-30T00:00:00Z","type":"t","actor":{"agency":"a","role":"r"},"packet":"p","prev":"%s"}`, strings.Repeat("A", 43)+"=")))
	f.Fuzz(func(t *testing.T, data []byte) { checkAgrees(t, data) })
}
