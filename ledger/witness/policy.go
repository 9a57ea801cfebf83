package witness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrQuorum is wrapped by Policy.Check when a checkpoint carries fewer
// valid cosignatures than the policy's quorum.
var ErrQuorum = errors.New("witness: too few valid cosignatures")

// Policy is a set of trusted witnesses and how many of them must have
// cosigned a checkpoint.
type Policy struct {
	witnesses []*Verifier
	quorum    int
}

// NewPolicy returns the policy "quorum of the witnesses with these
// verifier keys". A key given twice counts once; the quorum must be
// between 0 (nothing required) and the number of distinct keys.
func NewPolicy(vkeys []string, quorum int) (*Policy, error) {
	p := &Policy{quorum: quorum}
	seen := map[string]bool{}
	for _, k := range vkeys {
		v, err := NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return nil, err
		}
		if !seen[v.String()] {
			seen[v.String()] = true
			p.witnesses = append(p.witnesses, v)
		}
	}
	if quorum < 0 || quorum > len(p.witnesses) {
		return nil, fmt.Errorf("witness: quorum %d is not between 0 and the %d witnesses given", quorum, len(p.witnesses))
	}
	return p, nil
}

// Quorum returns how many witnesses must have cosigned.
func (p *Policy) Quorum() int { return p.quorum }

// Witnesses returns how many distinct witnesses the policy trusts.
func (p *Policy) Witnesses() int { return len(p.witnesses) }

// Cosignature is a valid cosignature by one of a policy's witnesses.
type Cosignature struct {
	Name string    // the witness key's name
	Key  string    // its verifier key
	Time time.Time // when the witness cosigned (UTC, whole seconds)
}

// Result is what Policy.Check found on a checkpoint.
type Result struct {
	// Valid holds one cosignature per witness that validly cosigned,
	// earliest first.
	Valid []Cosignature
	// NoLaterThan is the time by which a quorum of witnesses had seen the
	// checkpoint: the quorum-th earliest timestamp (zero for quorum 0 or
	// when the quorum is not met).
	NoLaterThan time.Time
}

// Check verifies the cosignatures on the signed note (a checkpoint with
// its signatures) against the policy. It does not check the log's own
// signature: do that first (format.OpenCheckpoint). Lines from unknown
// keys are ignored and invalid ones do not count; with fewer than the
// quorum valid, the error wraps ErrQuorum and the Result still lists the
// valid ones.
func (p *Policy) Check(signed []byte) (Result, error) {
	text, sigs, err := splitNote(signed)
	if err != nil {
		return Result{}, err
	}
	best := map[*Verifier]time.Time{}
	for _, l := range sigs {
		name, hash, sig, err := parseSignatureLine(l)
		if err != nil {
			return Result{}, err
		}
		for _, v := range p.witnesses {
			if v.name != name || v.hash != hash {
				continue
			}
			if t, ok := v.verify(text, sig); ok {
				if old, dup := best[v]; !dup || t.Before(old) {
					best[v] = t
				}
			}
		}
	}
	var r Result
	for v, t := range best {
		r.Valid = append(r.Valid, Cosignature{Name: v.name, Key: v.String(), Time: t})
	}
	slices.SortFunc(r.Valid, func(a, b Cosignature) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if len(r.Valid) < p.quorum {
		return r, fmt.Errorf("%w: %d of the %d required", ErrQuorum, len(r.Valid), p.quorum)
	}
	if p.quorum > 0 {
		r.NoLaterThan = r.Valid[p.quorum-1].Time
	}
	return r, nil
}

// splitNote splits a signed note into its text (ending in a newline) and
// its signature lines (without newlines), as C2SP signed-note lays it out.
func splitNote(signed []byte) (text []byte, sigs []string, err error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 || !utf8.Valid(signed) || len(signed) == i+2 || signed[len(signed)-1] != '\n' {
		return nil, nil, errors.New("witness: not a signed note")
	}
	return signed[:i+1], strings.Split(string(signed[i+2:len(signed)-1]), "\n"), nil
}

// parseSignatureLine parses "— <name> <base64(key hash || signature)>".
func parseSignatureLine(l string) (name string, hash uint32, sig []byte, err error) {
	rest, ok := strings.CutPrefix(l, "— ")
	name, b64, ok2 := strings.Cut(rest, " ")
	if !ok || !ok2 || !validName(name) {
		return "", 0, nil, fmt.Errorf("witness: malformed signature line %q", short([]byte(l)))
	}
	raw, err := base64Strict.DecodeString(b64)
	if err != nil || len(raw) < 5 {
		return "", 0, nil, fmt.Errorf("witness: malformed signature line %q", short([]byte(l)))
	}
	return name, binary.BigEndian.Uint32(raw), raw[4:], nil
}
