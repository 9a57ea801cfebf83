package gateway

import (
	"errors"
	"strings"
	"testing"
)

// TestCheckManifestReportsAll: one 422 names every problem of a manifest,
// every missing material included, not only the first.
func TestCheckManifestReportsAll(t *testing.T) {
	g := newFuzzGateway(t)
	in := &manifestInput{
		Item: "ENT-SETUP", Destination: "qingpu-amr",
		Applicant: applicantInput{Type: "enterprise", Name: "上海青嘉贸易有限公司", ID: "91310118MA1G00011X"},
		Materials: []materialInput{
			{Kind: "consent_form", Filename: "consent.pdf"},
			{Kind: "articles", Filename: "articles.ofd"},
			{Kind: "food_safety_rules", Filename: "rules.pdf"},
		},
	}
	_, _, _, err := g.checkManifest(Principal{Agency: "jiashan-window", Role: RoleSubmitter}, in)
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("want a validation error, got %v", err)
	}
	for _, kind := range []string{"application_form", "applicant_id", "address_proof", "appointments"} {
		if !strings.Contains(ve.Fields["materials"], `"`+kind+`"`) {
			t.Errorf("materials does not name the missing %s: %q", kind, ve.Fields["materials"])
		}
	}
	for _, k := range []string{"consent_form", "articles"} {
		if strings.Contains(ve.Fields["materials"], `"`+k+`"`) {
			t.Errorf("materials names %s, which was given: %q", k, ve.Fields["materials"])
		}
	}
	if ve.Fields["materials[2].kind"] == "" || ve.Fields["applicant.id"] == "" {
		t.Errorf("the unknown kind and the bad credit code are not both reported: %v", ve.Fields)
	}
}

func TestFieldsKeepEveryProblem(t *testing.T) {
	f := fields{}
	f.add("materials", "at most %d materials per packet", 2)
	f.add("materials", "missing required material %q", "articles")
	f.add("materials", "at most %d materials per packet", 2)
	if want := `at most 2 materials per packet; missing required material "articles"`; f["materials"] != want {
		t.Fatalf("got %q, want %q", f["materials"], want)
	}
}
