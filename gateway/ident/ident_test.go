package ident

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-playground/validator/v10"
)

func TestValidCreditCode(t *testing.T) {
	tests := []struct {
		code string
		want bool
		why  string
	}{
		// docs/domain.md, valid examples.
		{"91310118MA1G00011T", true, "synthetic, Qingpu"},
		{"91320509MA1MXK8Y2P", true, "synthetic, Wujiang"},
		{"92330421MA2B3C4D14", true, "synthetic, Jiashan sole trader"},
		{"91350100M000100Y43", true, "widely circulated sample"},
		// docs/domain.md, invalid examples.
		{"91310118MA1G00011A", false, "check should be T"},
		{"91310118MA1G00101T", false, "transposition"},
		{"91310118MA1G0O011T", false, "letter O"},
		{"9131011MA1G00011T", false, "17 characters"},
		// The alphabet trap: S, V and Z are excluded, even where the check
		// character would come out right under a naive [0-9A-HJ-NPQ-TV-Z] regex.
		{"91310118MA1G0S011T", false, "letter S"},
		{"91310118MA1G0V011T", false, "letter V"},
		{"91310118MA1G0Z011T", false, "letter Z"},
		{"91310118MA1G0I011T", false, "letter I"},
		{"91310118MA1G00011S", false, "check char S"},
		{"91310118MA1G00011V", false, "check char V"},
		{"91310118MA1G00011Z", false, "check char Z"},
		// Position rules, each with a correct check character.
		{withCheck("01310118MA1G0001"), false, "department 0"},
		{withCheck("B1310118MA1G0001"), false, "department B"},
		{withCheck("A1310118MA1G0001"), true, "department A"},
		{withCheck("N2310118MA1G0001"), true, "department N"},
		{withCheck("Y1310118MA1G0001"), true, "department Y"},
		{withCheck("51310118MA1G0001"), true, "department 5"},
		{withCheck("94310118MA1G0001"), false, "market regulation category 4"},
		{withCheck("93310118MA1G0001"), true, "co-operative"},
		{withCheck("9131A118MA1G0001"), false, "letter in region part"},
		{"91310118ma1g00011t", false, "lower case"},
		{"", false, "empty"},
		{"91310118MA1G00011TT", false, "19 characters"},
		{"９1310118MA1G00011T", false, "full-width digit"},
	}
	for _, tt := range tests {
		if got := ValidCreditCode(tt.code); got != tt.want {
			t.Errorf("ValidCreditCode(%q) = %v, want %v (%s)", tt.code, got, tt.want, tt.why)
		}
	}
}

// withCheck appends the correct check character to the first 17 characters,
// so that position rules are tested on their own. It expects 16 characters
// and pads with '0'.
func withCheck(s string) string {
	s += "0"
	sum := 0
	for i, w := range creditWeights {
		sum += strings.IndexByte(creditAlphabet, s[i]) * w
	}
	return s + string(creditAlphabet[(31-sum%31)%31])
}

func TestCitizenID(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want string // normalised form; "" when invalid
		err  error
	}{
		// docs/domain.md, valid examples.
		{"11010519491231002X", "11010519491231002X", nil},
		{"440524188001010014", "440524188001010014", nil},
		{"310118199003070016", "310118199003070016", nil},
		{"33042120000229023X", "33042120000229023X", nil},
		// docs/domain.md, invalid examples.
		{"110105194912310020", "", ErrCitizenIDCheck},
		{"330421199902300012", "", ErrCitizenIDBirth},
		{"310118203001010019", "", ErrCitizenIDBirth},
		{"320509198513120020", "", ErrCitizenIDBirth},
		// Normalisation.
		{" 11010519491231002x\t", "11010519491231002X", nil},
		{"110105491231002", "11010519491231002X", nil}, // 15-digit legacy
		{"310118900307001", "310118199003070016", nil},
		{"310118900230001", "", ErrCitizenIDBirth}, // legacy, 30 February
		// Characters and length.
		{"", "", ErrCitizenIDLength},
		{"1101051949123100", "", ErrCitizenIDLength},
		{"11010519491231002XX", "", ErrCitizenIDLength},
		{"1101051949123100X2", "", ErrCitizenIDChars},
		{"11010519491231002Y", "", ErrCitizenIDChars},
		{"11010549123100X", "", ErrCitizenIDChars},
		{"110105-1949-1231", "", ErrCitizenIDChars},
		{"１１0105194912310020", "", ErrCitizenIDChars}, // full-width, 22 bytes
		// Dates, with correct check digits so that only the date is wrong.
		{cid("11010517991231001"), "", ErrCitizenIDBirth},         // before 1800
		{cid("11010519000229001"), "", ErrCitizenIDBirth},         // 1900 was not a leap year
		{cid("11010520250601001"), cid("11010520250601001"), nil}, // born today
		{cid("11010520250602001"), "", ErrCitizenIDBirth},         // tomorrow
	}
	for _, tt := range tests {
		got, err := normalizeCitizenID(tt.in, now)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("normalizeCitizenID(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// cid appends the MOD 11-2 check character to 17 digits.
func cid(d17 string) string { return d17 + string(citizenCheck(d17)) }

func TestCitizenIDBornTodayInChina(t *testing.T) {
	// 2025-06-01 20:00 UTC is already 2 June in China.
	now := time.Date(2025, 6, 1, 20, 0, 0, 0, time.UTC)
	if _, err := normalizeCitizenID(cid("11010520250602001"), now); err != nil {
		t.Errorf("born today in China: %v", err)
	}
}

func TestValidCitizenIDUsesClock(t *testing.T) {
	if !validCitizenID("11010519491231002X") || validCitizenID("310118203001010019") {
		t.Error("validCitizenID disagrees with the examples in docs/domain.md")
	}
	if _, err := NormalizeCitizenID("11010519491231002"); !errors.Is(err, ErrCitizenIDLength) {
		t.Errorf("17 digits: %v", err)
	}
}

func TestValidRegionCode(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"310118", true}, {"310000", true}, {"320509", true}, {"320500", true},
		{"320000", true}, {"330421", true}, {"330400", true}, {"330000", true},
		{"310229", true}, // 青浦县, abolished but still on old documents
		{"320584", true}, // old 吴江市
		{"110105", true}, {"440524", true}, {"710000", true}, {"820000", true},
		{"000000", false}, {"100000", false}, {"160000", false}, {"240000", false},
		{"380000", false}, {"470000", false}, {"550000", false}, {"660000", false},
		{"720000", false}, {"830000", false}, {"990000", false},
		{"31011", false}, {"3101180", false}, {"31011A", false}, {"", false},
		{"３10118", false},
	}
	for _, tt := range tests {
		if got := validRegionCode(tt.code); got != tt.want {
			t.Errorf("validRegionCode(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

func TestRegions(t *testing.T) {
	want := map[string]string{
		"310118": "青浦区", "310000": "上海市", "320509": "吴江区", "320500": "苏州市",
		"320000": "江苏省", "330421": "嘉善县", "330400": "嘉兴市", "330000": "浙江省",
	}
	for code, name := range want {
		if got := regions[code]; got != name {
			t.Errorf("regions[%s] = %q, want %q", code, got, name)
		}
	}
	for code := range regions {
		if !validRegionCode(code) {
			t.Errorf("regions has invalid code %s", code)
		}
		if _, ok := want[code]; !ok {
			t.Errorf("regions has unexpected code %s", code)
		}
	}
	if regions["110105"] != "" {
		t.Error("regions of an unknown code should be empty")
	}
}

func TestRegisterValidators(t *testing.T) {
	v := validator.New()
	if err := RegisterValidators(v); err != nil {
		t.Fatal(err)
	}
	type applicant struct {
		Credit string  `validate:"omitempty,uscc"`
		ID     string  `validate:"omitempty,cnid"`
		Region string  `validate:"omitempty,region"`
		Ptr    *string `validate:"omitempty,uscc"`
		Number int     `validate:"omitempty,region"`
	}
	good := "91310118MA1G00011T"
	if err := v.Struct(applicant{
		Credit: "92330421MA2B3C4D14", ID: "11010519491231002x", Region: "330421", Ptr: &good,
	}); err != nil {
		t.Errorf("valid struct: %v", err)
	}
	bad := "91310118MA1G00011A"
	err := v.Struct(applicant{
		Credit: "91310118MA1G0O011T", ID: "110105194912310020", Region: "000000", Ptr: &bad, Number: 310118,
	})
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		t.Fatalf("invalid struct: got %v", err)
	}
	failed := map[string]string{}
	for _, fe := range verrs {
		failed[fe.Field()] = fe.Tag()
	}
	want := map[string]string{"Credit": "uscc", "ID": "cnid", "Region": "region", "Ptr": "uscc", "Number": "region"}
	for f, tag := range want {
		if failed[f] != tag {
			t.Errorf("field %s: failed tag %q, want %q (all: %v)", f, failed[f], tag, failed)
		}
	}
}

func FuzzCreditCode(f *testing.F) {
	for _, s := range []string{
		"91310118MA1G00011T", "91320509MA1MXK8Y2P", "92330421MA2B3C4D14", "91350100M000100Y43",
		"91310118MA1G00011A", "91310118MA1G0O011T", "9131011MA1G00011T", "91310118MA1G0S011T", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidCreditCode(s) {
			return
		}
		// Property: a valid code is canonical (upper case, 18 bytes), and
		// changing any single character to another symbol breaks the check.
		if len(s) != 18 || strings.ToUpper(s) != s {
			t.Fatalf("accepted non-canonical %q", s)
		}
		b := []byte(s)
		b[17] = creditAlphabet[(strings.IndexByte(creditAlphabet, b[17])+1)%31]
		if ValidCreditCode(string(b)) {
			t.Fatalf("accepted %q and %q", s, b)
		}
	})
}

func FuzzCitizenID(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "440524188001010014", "310118199003070016", "33042120000229023X",
		"110105194912310020", "330421199902300012", "310118203001010019", "320509198513120020",
		"110105491231002", " 11010519491231002x ", "",
	} {
		f.Add(s)
	}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeCitizenID(s, now)
		if err != nil {
			if n != "" {
				t.Fatalf("%q: error %v with result %q", s, err, n)
			}
			return
		}
		// Property: the normal form is valid, 18 bytes and a fixed point.
		n2, err := normalizeCitizenID(n, now)
		if err != nil || n2 != n || len(n) != 18 {
			t.Fatalf("%q -> %q -> %q, %v", s, n, n2, err)
		}
	})
}
