// Package ident checks the identifiers an application carries: unified
// social credit codes (GB 32100-2015), resident ID numbers (GB 11643-1999)
// and GB/T 2260 region codes. Register them as validator tags with
// RegisterValidators.
package ident

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
)

// creditAlphabet is the GB 32100-2015 character set, in value order 0–30.
// I, O, Z, S and V are excluded; many published regexes wrongly allow S, V and Z.
const creditAlphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// creditWeights are 3^(i-1) mod 31 for positions 1–17.
var creditWeights = [17]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// ValidCreditCode reports whether s is a well-formed 统一社会信用代码
// (GB 32100-2015): 18 upper-case characters from the 31-symbol alphabet,
// a known registering department, a digit-only region part and a correct
// check character. It does not say whether the code was ever issued.
func ValidCreditCode(s string) bool {
	if len(s) != 18 {
		return false
	}
	var vals [18]int
	for i := 0; i < 18; i++ {
		v := strings.IndexByte(creditAlphabet, s[i])
		if v < 0 {
			return false
		}
		vals[i] = v
	}
	// Position 1: registering department 1–9, A (military), N (agriculture), Y (other).
	if d := s[0]; d == '0' || (d > '9' && d != 'A' && d != 'N' && d != 'Y') {
		return false
	}
	// Position 2: the category. Only market regulation (9) is spelled out
	// in docs/domain.md: 1 enterprise, 2 sole trader, 3 co-operative.
	if s[0] == '9' && (s[1] < '1' || s[1] > '3') {
		return false
	}
	// Positions 3–8: the registering authority's GB/T 2260 code, digits only.
	for i := 2; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	sum := 0
	for i, w := range creditWeights {
		sum += vals[i] * w
	}
	return vals[17] == (31-sum%31)%31
}

// Citizen ID rule failures. The API shows them to applicants, so each names
// the one rule that failed; match with errors.Is.
var (
	ErrCitizenIDLength = errors.New("citizen id: must have 18 characters (or 15 digits for a legacy number)")
	ErrCitizenIDChars  = errors.New("citizen id: must be 17 digits followed by a digit or X")
	ErrCitizenIDCheck  = errors.New("citizen id: check digit does not match")
	ErrCitizenIDBirth  = errors.New("citizen id: positions 7-14 are not a valid birth date")
)

var citizenWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const citizenChecks = "10X98765432"

// chinaTime is UTC+8 without DST: birth dates on ID cards are local dates,
// and a fixed zone needs no tzdata on the host.
var chinaTime = time.FixedZone("CST", 8*60*60)

// NormalizeCitizenID returns the canonical 18-character form of a 居民身份证号码
// (GB 11643-1999): surrounding space trimmed, x upper-cased, and a 15-digit
// legacy number converted by inserting "19" and computing the check digit.
// The error wraps one of the ErrCitizenID* values.
func NormalizeCitizenID(s string) (string, error) {
	return normalizeCitizenID(s, time.Now())
}

// validCitizenID reports whether NormalizeCitizenID accepts s. It therefore
// accepts lower-case x, surrounding space and 15-digit legacy numbers too.
func validCitizenID(s string) bool {
	_, err := NormalizeCitizenID(s)
	return err == nil
}

// normalizeCitizenID is NormalizeCitizenID with an injectable clock for the
// "not born in the future" rule.
func normalizeCitizenID(s string, now time.Time) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch len(s) {
	case 15:
		if !allDigits(s) {
			return "", ErrCitizenIDChars
		}
		s = s[:6] + "19" + s[6:]
		if err := checkBirthDate(s[6:14], now); err != nil {
			return "", err
		}
		return s + string(citizenCheck(s)), nil
	case 18:
		if !allDigits(s[:17]) || !(isDigit(s[17]) || s[17] == 'X') {
			return "", ErrCitizenIDChars
		}
		// Check the date first: "30 February" is a clearer message than a
		// check-digit mismatch when both are wrong.
		if err := checkBirthDate(s[6:14], now); err != nil {
			return "", err
		}
		if citizenCheck(s[:17]) != s[17] {
			return "", ErrCitizenIDCheck
		}
		return s, nil
	default:
		if len(s) > 0 && !validIDChars(s) {
			return "", ErrCitizenIDChars
		}
		return "", ErrCitizenIDLength
	}
}

// citizenCheck computes the ISO 7064 MOD 11-2 check character of 17 digits.
func citizenCheck(d17 string) byte {
	sum := 0
	for i, w := range citizenWeights {
		sum += int(d17[i]-'0') * w
	}
	return citizenChecks[sum%11]
}

// checkBirthDate checks an 8-digit YYYYMMDD: a real calendar date, no
// earlier than 1800, and not after today in China.
func checkBirthDate(ymd string, now time.Time) error {
	t, err := time.Parse("20060102", ymd)
	if err != nil || t.Year() < 1800 {
		return ErrCitizenIDBirth
	}
	y, m, d := now.In(chinaTime).Date()
	if t.After(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)) {
		return fmt.Errorf("%w (in the future)", ErrCitizenIDBirth)
	}
	return nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validIDChars reports whether s could be part of an ID number, so that a
// wrong length is reported as such rather than as bad characters.
func validIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && s[i] != 'X' {
			return false
		}
	}
	return true
}

// provinceCodes are the first two digits of every GB/T 2260 province-level
// division, Taiwan (71), Hong Kong (81) and Macao (82) included.
var provinceCodes = map[string]bool{
	"11": true, "12": true, "13": true, "14": true, "15": true,
	"21": true, "22": true, "23": true,
	"31": true, "32": true, "33": true, "34": true, "35": true, "36": true, "37": true,
	"41": true, "42": true, "43": true, "44": true, "45": true, "46": true,
	"50": true, "51": true, "52": true, "53": true, "54": true,
	"61": true, "62": true, "63": true, "64": true, "65": true,
	"71": true, "81": true, "82": true,
}

// validRegionCode reports whether s has the shape of a GB/T 2260 code: six
// digits starting with a real province code. It does not require the code to
// be current: old documents carry abolished codes such as 310229 (青浦县).
func validRegionCode(s string) bool {
	return len(s) == 6 && allDigits(s) && provinceCodes[s[:2]]
}

// regions names the GB/T 2260 codes of the three pilot areas and their parents.
var regions = map[string]string{
	"310000": "上海市",
	"310118": "青浦区",
	"320000": "江苏省",
	"320500": "苏州市",
	"320509": "吴江区",
	"330000": "浙江省",
	"330400": "嘉兴市",
	"330421": "嘉善县",
}

// RegisterValidators adds the struct tags uscc (credit code), cnid (citizen
// ID, any form NormalizeCitizenID accepts) and region (GB/T 2260 shape) to v.
// Non-string fields never validate.
func RegisterValidators(v *validator.Validate) error {
	for tag, ok := range map[string]func(string) bool{
		"uscc":   ValidCreditCode,
		"cnid":   validCitizenID,
		"region": validRegionCode,
	} {
		err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			f := fl.Field()
			return f.Kind() == reflect.String && ok(f.String())
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", tag, err)
		}
	}
	return nil
}
