package bundle

import (
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

func nfc(s string) string { return norm.NFC.String(s) }

var fold = cases.Fold()

// checkNames holds every record's name to the canonical form and returns
// the records by name. A name is refused (and its record left out, so the
// file counts as missing if the bundle needs it) when it is not NFC, holds
// a backslash, a control character, an empty, "." or ".." element, starts
// with "/", repeats another name or differs from one only by case; when it
// is not one of the bundle's places; or when it names an entry or proof
// with a seq not in plain decimal. Directory records are kept only when
// they are parents of the bundle's files (what zip -r adds).
func checkNames(rep *Report, recs []record) map[string]*record {
	files := map[string]*record{}
	folded := map[string]string{}
	var dirs []*record
	for i := range recs {
		rec := &recs[i]
		name := rec.name
		if why := badName(name); why != "" {
			rep.fail(name, "%s", why)
			continue
		}
		key := fold.String(name)
		if other, dup := folded[key]; dup {
			if other == name {
				rep.fail(name, "appears twice in the bundle")
			} else {
				rep.fail(name, "differs from %s only by case: on many file systems one would overwrite the other", other)
			}
			delete(files, other)
			continue
		}
		folded[key] = name
		if rec.dir() {
			if rec.usize != 0 || rec.csize != 0 {
				rep.fail(name, "a directory record with data")
				continue
			}
			dirs = append(dirs, rec)
			continue
		}
		if why := badPlace(name); why != "" {
			rep.fail(name, "%s", why)
			continue
		}
		files[name] = rec
	}
	for _, d := range dirs {
		parent := false
		for name := range files {
			parent = parent || strings.HasPrefix(name, d.name)
		}
		if !parent {
			rep.fail(d.name, "a directory record that holds none of the bundle's files")
			continue
		}
		files[d.name] = d
	}
	return files
}

// badName says what is wrong with a zip name, or "".
func badName(name string) string {
	switch {
	case name == "":
		return "an empty name"
	case !norm.NFC.IsNormalString(name):
		return "a name not in Unicode normal form C: another spelling of a name could ride along"
	case strings.ContainsRune(name, '\\'):
		return "a name with a backslash: some tools read it as a path separator"
	case strings.HasPrefix(name, "/"):
		return "an absolute name"
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == unicode.ReplacementChar {
			return "a name with a control or formatting character"
		}
	}
	elems := strings.Split(strings.TrimSuffix(name, "/"), "/")
	for _, e := range elems {
		switch e {
		case "":
			return "a name with an empty path element"
		case ".", "..":
			return "a name with a " + strconvQuote(e) + " path element: it would be written outside the directory it is extracted to"
		}
		if len(e) > 2 && e[1] == ':' {
			return "a name with a drive letter"
		}
	}
	return ""
}

// badPlace says why a file name is not one a bundle holds, or "".
func badPlace(name string) string {
	switch {
	case name == Manifest || name == Applicant || name == Checkpoint || name == Cosigned || name == Consistency:
		return ""
	case strings.HasPrefix(name, Materials):
		if strings.Count(name, "/") != 2 {
			return "not a place a bundle holds: materials are materials/<kind>/<file name>"
		}
		return ""
	case strings.HasPrefix(name, License):
		if strings.Count(name, "/") != 1 {
			return "not a place a bundle holds: the licence is license/<file name>"
		}
		return ""
	case strings.HasPrefix(name, Entries), strings.HasPrefix(name, Proofs):
		s := name[strings.LastIndex(name, "/")+1:]
		if strings.Count(name, "/") != 2 {
			return "not a place a bundle holds"
		}
		if _, ok := seqOf(s); !ok {
			return "not an entry or proof file name: <seq>.json with seq in plain decimal"
		}
		return ""
	}
	return "a file the bundle does not list"
}

// seqOf reads "<seq>.json" with seq in plain decimal: no sign, no leading
// zeros, so one entry has one file name.
func seqOf(s string) (int64, bool) {
	d, ok := strings.CutSuffix(s, ".json")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(d, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != d {
		return 0, false
	}
	return seq, true
}

func strconvQuote(s string) string { return strconv.Quote(s) }
