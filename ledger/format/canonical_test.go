package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestCanonical(t *testing.T) {
	good := []string{
		`{}`, `[]`, `0`, `-1`, `9223372036854775807`, `-9223372036854775808`, `true`, `null`,
		`{"a":1,"b":[1,2,{"c":"d"}]}`,
		`{"":0,"A":1,"a":2,"é":3,"中":4}`, // bytewise: "" < "A" < "a" < "é" (c3) < "中" (e4)
		`"\"\\\b\f\n\r\t\u0000\u001f"`,
		"\"/ < > & \u007f \u2028 \u2029 中文 😀\"",
	}
	for _, s := range good {
		if err := Canonical([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		`{"b":1,"a":2}`:       `{"a":2,"b":1}`,
		`{"a": 1}`:            `{"a":1}`,
		" {}":                 `{}`,
		"{}\n":                `{}`,
		`"\u0041"`:            `"A"`,
		`"\/"`:                `"/"`,
		`"\u000a"`:            `"\n"`,
		`"\u001F"`:            `"\u001f"`,
		`"\u00e9"`:            `"é"`,
		`"\ud83d\ude00"`:      `"😀"`,
		`"\u003c"`:            `"<"`,
		`{"é":1,"z":2}`:       `{"z":2,"é":1}`,
		`[1, 2]`:              `[1,2]`,
		`{"a":{"c":1,"b":2}}`: `{"a":{"b":2,"c":1}}`,
	}
	for in, want := range bad {
		if err := Canonical([]byte(in)); !errors.Is(err, ErrPayloadNotCanonical) {
			t.Errorf("%s: Canonical said %v", in, err)
		}
		got, err := Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("%s: Canonicalize = %s, %v; want %s", in, got, err, want)
		}
	}
	refused := []string{
		`{"a":1,"a":2}`, `{"a":1,"b":{"x":1,"x":1}}`, `1.0`, `1e3`, `1E3`, `-0`, `01`, `-01`,
		`9223372036854775808`, `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, "\"\xff\"", "\"\xc3\"",
		"\"a\x01\"", `"\x"`, `{"a"}`, `{"a":1,}`, `[1,]`, `{} {}`, ``, `tru`, `"abc`,
		string(bytes.Repeat([]byte("["), 100)) + string(bytes.Repeat([]byte("]"), 100)),
	}
	for _, s := range refused {
		if _, err := Canonicalize([]byte(s)); err == nil {
			t.Errorf("%q: Canonicalize accepted it", s)
		}
		if err := Canonical([]byte(s)); err == nil {
			t.Errorf("%q: Canonical accepted it", s)
		}
	}
}

// TestCanonicalMatchesGo: the canonical form decodes to what encoding/json
// decodes the original to, so meaning is kept.
func TestCanonicalMatchesGo(t *testing.T) {
	in := `{"z":"<a&b>\u2028","a":[1,-2,{"y":null,"x":true}],"m":"\u00e9\ud83d\ude00\t"}`
	c, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(c, &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("meaning changed:\n%s\n%s", ja, jb)
	}
}

// TestEntryKeepsCanonicalPayload: the entry encoding carries a canonical
// payload byte for byte (no HTML or U+2028 escaping on the way).
func TestEntryKeepsCanonicalPayload(t *testing.T) {
	pl := []byte("{\"a\":\"<&> \u2028 \u2029 中\",\"b\":1}")
	if err := CheckPayload(pl); err != nil {
		t.Fatal(err)
	}
	e := Entry{Seq: 1, Time: time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC), Type: "t", Packet: "p", Payload: pl}
	raw, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, pl) {
		t.Fatalf("payload altered in %s", raw)
	}
	got, err := ParseEntry(raw)
	if err != nil || !bytes.Equal(got.Payload, pl) {
		t.Fatalf("parse: %v, %s", err, got.Payload)
	}
	for _, p := range []string{`[]`, `"x"`, `{"b":1,"a":2}`} {
		if err := CheckPayload([]byte(p)); err == nil {
			t.Errorf("%s: CheckPayload accepted it", p)
		}
	}
}

// FuzzCanonical: whatever Canonical accepts is its own canonical encoding,
// and whatever Canonicalize returns is canonical and means the same to
// encoding/json.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"b":1,"a":[true,null,"x"]}`, `"\u00e9\ud83d\ude00"`, `-12`, `{"a":{"a":{}}}`, "\"\u2028\"", `1.5`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Canonicalize(in)
		if Canonical(in) == nil {
			if err != nil || !bytes.Equal(c, in) {
				t.Fatalf("canonical %q re-encodes to %q (%v)", in, c, err)
			}
		}
		if err != nil {
			return
		}
		if err := Canonical(c); err != nil {
			t.Fatalf("Canonicalize(%q) = %q is not canonical: %v", in, c, err)
		}
		var a, b any
		if json.Unmarshal(in, &a) != nil {
			t.Fatalf("Canonicalize accepted %q, encoding/json does not", in)
		}
		if err := json.Unmarshal(c, &b); err != nil {
			t.Fatalf("canonical %q is not JSON: %v", c, err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("meaning of %q changed: %s vs %s", in, ja, jb)
		}
	})
}

// BenchmarkCheckPayload checks a payload of the size and shape the gateway
// writes; Append runs it for every entry.
func BenchmarkCheckPayload(b *testing.B) {
	p := []byte(`{"item":"ENT-SETUP","n":12345,"sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}`)
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckPayload(p); err != nil {
			b.Fatal(err)
		}
	}
}
