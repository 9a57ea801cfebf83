package gateway

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"tongban/gateway/filetype"
)

func TestDefaultCatalog(t *testing.T) {
	c := DefaultCatalog()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	wantCodes := []string{
		"ENT-SETUP", "ENT-CHANGE", "ENT-DEREG-S", "ENT-DEREG", "IND-SETUP", "ENT-FOOD", "ENT-IPPL",
		"ENT-REISSUE", "RES-MARR-ARCH", "RES-MED-REMOTE", "RES-HUKOU-CERT", "RES-PENSION", "RES-HPF-PROOF",
	}
	var codes []string
	for _, it := range c.Items {
		codes = append(codes, it.Code)
	}
	if !slices.Equal(codes, wantCodes) {
		t.Errorf("codes = %v, want %v", codes, wantCodes)
	}
	for _, it := range c.Items {
		for kind, required := range map[string]bool{
			"consent_form": true, "applicant_id": true, "power_of_attorney": false, "agent_id": false,
		} {
			m, ok := it.Material(kind)
			if !ok || m.Required != required {
				t.Errorf("%s: %s present=%v, want required=%v", it.Code, kind, ok, required)
			}
		}
		if it.Name == "" || it.NameEN == "" || it.TimeLimit.Text == "" {
			t.Errorf("%s: missing name or time-limit text", it.Code)
		}
		wantCat := CategoryResident
		if strings.HasPrefix(it.Code, "ENT-") || strings.HasPrefix(it.Code, "IND-") {
			wantCat = CategoryEnterprise
		}
		if it.Category != wantCat {
			t.Errorf("%s: category %q, want %q", it.Code, it.Category, wantCat)
		}
		for _, m := range it.Materials {
			if m.MaxBytes != DefaultMaxBytes || !slices.Equal(m.Types, []string{TypePDF, TypeOFD, TypeJPEG, TypePNG}) {
				t.Errorf("%s/%s: types %v, max %d", it.Code, m.Kind, m.Types, m.MaxBytes)
			}
			if m.Name == "" || m.NameEN == "" {
				t.Errorf("%s/%s: missing name", it.Code, m.Kind)
			}
		}
	}
}

func TestDefaultCatalogDetails(t *testing.T) {
	c := DefaultCatalog()
	tests := []struct {
		code     string
		required []string
		optional []string
		days     int
		working  bool
	}{
		{"ENT-SETUP", []string{"application_form", "address_proof", "articles", "appointments"}, nil, 3, true},
		{"ENT-CHANGE", []string{"application_form", "business_license", "amended_articles"}, []string{"address_proof"}, 3, true},
		{"ENT-FOOD", []string{"entity_qualification", "premises_layout", "food_safety_rules"}, []string{"food_safety_manager"}, 10, true},
		{"ENT-REISSUE", []string{"application_form"}, nil, 0, false},
		{"RES-MARR-ARCH", nil, []string{"household_register"}, 0, false},
		{"RES-MED-REMOTE", []string{"filing_form", "residence_proof"}, []string{"posting_certificate"}, 1, false},
		{"RES-PENSION", []string{"application_form", "contribution_record"}, nil, 45, true},
		{"RES-HPF-PROOF", nil, nil, 0, false},
	}
	for _, tt := range tests {
		it, ok := c.Item(tt.code)
		if !ok {
			t.Fatalf("no item %s", tt.code)
		}
		for _, kind := range tt.required {
			if m, ok := it.Material(kind); !ok || !m.Required {
				t.Errorf("%s: %s should be required", tt.code, kind)
			}
		}
		for _, kind := range tt.optional {
			if m, ok := it.Material(kind); !ok || m.Required {
				t.Errorf("%s: %s should be optional", tt.code, kind)
			}
		}
		if it.TimeLimit.Days != tt.days || it.TimeLimit.WorkingDays != tt.working {
			t.Errorf("%s: time limit %+v", tt.code, it.TimeLimit)
		}
	}
	if len(mustItem(t, c, "RES-HPF-PROOF").Materials) != 4 {
		t.Errorf("RES-HPF-PROOF should need only the common four materials")
	}
}

func mustItem(t *testing.T, c *Catalog, code string) *Item {
	t.Helper()
	it, ok := c.Item(code)
	if !ok {
		t.Fatalf("no item %s", code)
	}
	return it
}

func TestDefaultCatalogDestinations(t *testing.T) {
	c := DefaultCatalog()
	for _, it := range c.Items {
		var want []string
		switch {
		case it.Category == CategoryEnterprise:
			want = []string{"qingpu-amr", "qingpu-window", "wujiang-window", "jiashan-window"}
		case it.Code == "RES-MED-REMOTE":
			want = []string{"wujiang-medicare", "qingpu-window", "wujiang-window", "jiashan-window"}
		default:
			want = []string{"qingpu-window", "wujiang-window", "jiashan-window"}
		}
		if !slices.Equal(it.Destinations, want) {
			t.Errorf("%s: destinations %v, want %v", it.Code, it.Destinations, want)
		}
		if it.AllowsDestination("yrd-audit") {
			t.Errorf("%s: the auditor is no destination", it.Code)
		}
	}
	// Each call is a fresh copy.
	a, b := DefaultCatalog(), DefaultCatalog()
	a.Items[0].Destinations[0] = "changed"
	a.Items[0].Materials[0].Types[0] = "changed"
	if b.Items[0].Destinations[0] == "changed" || b.Items[0].Materials[0].Types[0] == "changed" {
		t.Error("DefaultCatalog shares slices between calls")
	}
	if a.Items[1].Destinations[0] == "changed" || a.Items[0].Materials[1].Types[0] == "changed" {
		t.Error("DefaultCatalog shares slices between items or materials")
	}
}

func TestCatalogLookup(t *testing.T) {
	c := DefaultCatalog()
	it, ok := c.Item("ENT-SETUP")
	if !ok || it.Name != "企业设立登记" {
		t.Fatalf("Item(ENT-SETUP) = %v, %v", it, ok)
	}
	m, ok := it.Material("articles")
	if !ok || !m.Accepts(TypeOFD) || m.Accepts(filetype.ZIP) || m.Accepts("text/html") {
		t.Errorf("articles: %+v", m)
	}
	// Lookups return pointers into the catalogue.
	m.MaxBytes = 1
	if m2, _ := it.Material("articles"); m2.MaxBytes != 1 {
		t.Error("Material does not point into the item")
	}
	if _, ok := c.Item("NOPE"); ok {
		t.Error("Item(NOPE) found")
	}
	if _, ok := it.Material("nope"); ok {
		t.Error("Material(nope) found")
	}
	var nilCat *Catalog
	if _, ok := nilCat.Item("ENT-SETUP"); ok {
		t.Error("nil catalogue found an item")
	}
	var nilItem *Item
	if _, ok := nilItem.Material("applicant_id"); ok {
		t.Error("nil item found a material")
	}
	if !(&Item{}).AllowsDestination("anyone") {
		t.Error("empty Destinations should allow any agency")
	}
}

// TestCatalogJSON pins the wire shape of GET /v1/catalog (docs/domain.md).
func TestCatalogJSON(t *testing.T) {
	b, err := json.Marshal(DefaultCatalog())
	if err != nil {
		t.Fatal(err)
	}
	var wire struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(b, &wire); err != nil {
		t.Fatal(err)
	}
	if len(wire.Items) != 13 {
		t.Fatalf("%d items", len(wire.Items))
	}
	for _, it := range wire.Items {
		for _, k := range []string{"code", "name", "name_en", "category", "time_limit", "materials"} {
			if _, ok := it[k]; !ok {
				t.Errorf("item lacks %q: %s", k, b)
			}
		}
		var tl map[string]any
		if err := json.Unmarshal(it["time_limit"], &tl); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"days", "working_days", "text"} {
			if _, ok := tl[k]; !ok {
				t.Errorf("time_limit lacks %q", k)
			}
		}
		var ms []map[string]any
		if err := json.Unmarshal(it["materials"], &ms); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			for _, k := range []string{"kind", "name", "required", "types", "max_bytes"} {
				if _, ok := m[k]; !ok {
					t.Errorf("material lacks %q", k)
				}
			}
			if _, ok := m["types"].([]any); !ok {
				t.Errorf("types is not an array: %v", m["types"])
			}
			if _, ok := m["max_bytes"].(float64); !ok {
				t.Errorf("max_bytes is not a number: %v", m["max_bytes"])
			}
		}
	}
	if !strings.Contains(string(b), `"code":"ENT-SETUP","name":"企业设立登记"`) {
		t.Errorf("unexpected encoding: %.200s", b)
	}
	// And back: a catalogue survives a JSON round trip (config files).
	var c Catalog
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Catalog)
		want   string
	}{
		{"duplicate code", func(c *Catalog) { c.Items[1].Code = c.Items[0].Code }, "duplicate code"},
		{"empty code", func(c *Catalog) { c.Items[0].Code = "" }, "empty code"},
		{"duplicate kind", func(c *Catalog) { c.Items[0].Materials[1].Kind = c.Items[0].Materials[0].Kind }, "duplicate material kind"},
		{"empty kind", func(c *Catalog) { c.Items[0].Materials[1].Kind = "" }, "empty kind"},
		{"unknown type", func(c *Catalog) { c.Items[0].Materials[0].Types = append(c.Items[0].Materials[0].Types, "text/html") }, `unknown content type "text/html"`},
		{"zip type", func(c *Catalog) { c.Items[0].Materials[0].Types = []string{filetype.ZIP} }, "unknown content type"},
		{"no types", func(c *Catalog) { c.Items[0].Materials[0].Types = nil }, "no content types"},
		{"zero size", func(c *Catalog) { c.Items[0].Materials[0].MaxBytes = 0 }, "max_bytes must be positive"},
		{"negative size", func(c *Catalog) { c.Items[0].Materials[0].MaxBytes = -1 }, "max_bytes must be positive"},
		{"nothing required", func(c *Catalog) {
			for i := range c.Items[0].Materials {
				c.Items[0].Materials[i].Required = false
			}
		}, "no required material"},
		{"no materials", func(c *Catalog) { c.Items[0].Materials = nil }, "no required material"},
		{"category", func(c *Catalog) { c.Items[0].Category = "business" }, "category"},
		{"duplicate destination", func(c *Catalog) { c.Items[0].Destinations = []string{"a", "a"} }, "duplicate destination"},
		{"negative days", func(c *Catalog) { c.Items[0].TimeLimit.Days = -1 }, "negative time limit"},
		{"no items", func(c *Catalog) { c.Items = nil }, "no items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultCatalog()
			tt.change(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCatalogValidateReportsAll(t *testing.T) {
	c := DefaultCatalog()
	c.Items[1].Code = c.Items[0].Code
	c.Items[2].Materials[0].Types = []string{"text/plain"}
	err := c.Validate()
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Errorf("want two problems, got %v", err)
	}
}

func TestCatalogNormalize(t *testing.T) {
	var c Catalog
	if err := json.Unmarshal([]byte(`{"items":[{"code":"X","name":"测试","category":"resident",
		"materials":[{"kind":"applicant_id","required":true,"types":["application/pdf"]}]}]}`), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted max_bytes 0 before Normalize")
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Errorf("after Normalize: %v", err)
	}
	if m, _ := c.Items[0].Material("applicant_id"); m.MaxBytes != DefaultMaxBytes {
		t.Errorf("MaxBytes = %d", m.MaxBytes)
	}
}
