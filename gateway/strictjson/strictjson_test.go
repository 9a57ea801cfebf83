package strictjson

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Kind string `json:"kind"`
}

type Embedded struct {
	Extra string `json:"extra"`
}

type target struct {
	Embedded
	Action  string            `json:"action"`
	Reason  string            `json:"reason,omitempty"`
	Plain   int               // named by the Go name
	Skipped string            `json:"-"`
	Items   []inner           `json:"items"`
	Labels  map[string]string `json:"labels"`
	Any     any               `json:"any"`
	When    time.Time         `json:"when"`
	Ptr     *inner            `json:"ptr"`
}

func TestUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		want string // in the error
	}{
		{`{"action":"approve"}`, true, ""},
		{` {"action":"approve","reason":"x","unknown":{"a":1}} ` + "\n", true, ""},
		{`{"Plain":3,"extra":"e","items":[{"kind":"k"}],"labels":{"a":"1","A":"2"},"any":{"X":1,"x":2},"when":"2026-01-02T03:04:05Z","ptr":{"kind":"p"}}`, true, ""},
		{`{"action":"return","ACTION":"approve"}`, false, `"ACTION" is not "action"`},
		{`{"Action":"approve"}`, false, `"Action" is not "action"`},
		{`{"items":[{"KIND":"k"}]}`, false, `$.items[0]`},
		{`{"ptr":{"Kind":"k"}}`, false, `$.ptr`},
		{`{"EXTRA":"e"}`, false, `"EXTRA" is not "extra"`},
		{`{"plain":3}`, false, `"plain" is not "Plain"`},
		{`{"action":"receive","action":"approve"}`, false, `"action" given twice`},
		{`{"labels":{"a":"1","a":"2"}}`, false, `given twice`},
		{`{"any":[{"x":1,"x":2}]}`, false, `given twice`},
		{`{"unknown":{"x":1,"x":2}}`, false, `given twice`},
		{`{"action":"receive"}]`, false, `after the JSON value`},
		{`{"action":"receive"}}`, false, `after the JSON value`},
		{`{"action":"receive"} {}`, false, `after the JSON value`},
		{`{"action":"receive"} x`, false, ``},
		{`{"action":"receive"`, false, ``},
		{`{"action":1}`, false, ``},
		{``, false, ``},
	} {
		var v target
		err := Unmarshal([]byte(tc.in), &v)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v; want ok=%v, error naming %q", tc.in, err, tc.ok, tc.want)
		}
	}
	var v target
	if err := Unmarshal([]byte(`{"action":"approve","labels":{"a":"1"},"Plain":2,"extra":"e"}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.Action != "approve" || v.Labels["a"] != "1" || v.Plain != 2 || v.Extra != "e" {
		t.Fatalf("decoded %+v", v)
	}
}

// FuzzUnmarshal checks Unmarshal against encoding/json: what it accepts,
// encoding/json accepts with the same result; and what encoding/json
// decodes, re-encoded (which leaves no duplicates and nothing after), it
// accepts.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"action":"approve","reason":"ok"}`,
		`{"action":"return","ACTION":"approve"}`,
		`{"action":"receive"}]`,
		`{"a":1,"a":2}`,
		`[1,2,{"x":[{}]}]`,
		`{"items":[{"kind":"k","KIND":"j"}],"labels":{"a":"1"}}`,
		`"str" `,
		`null`,
		`{"any":{"\u0041":1,"A":2}}`,
		`{"action":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var strict, std target
		if Unmarshal(data, &strict) == nil {
			if err := json.Unmarshal(data, &std); err != nil {
				t.Fatalf("strict accepted what encoding/json refuses (%v): %q", err, data)
			}
			if !reflect.DeepEqual(strict, std) {
				t.Fatalf("strict and encoding/json differ on %q: %+v, %+v", data, strict, std)
			}
		}
		var a any
		if json.Unmarshal(data, &a) != nil {
			return
		}
		re, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		var b any
		if err := Unmarshal(re, &b); err != nil {
			t.Fatalf("strict refused re-encoded %q: %v", re, err)
		}
	})
}
