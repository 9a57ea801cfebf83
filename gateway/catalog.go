package gateway

import (
	"errors"
	"fmt"
	"slices"

	"tongban/gateway/filetype"
)

// Catalog lists the service items (事项) a gateway accepts packets for.
// It is served as is by GET /v1/catalog.
type Catalog struct {
	Items []Item `json:"items"`
}

// Item is one service item and the materials an applicant hands in for it.
type Item struct {
	Code      string    `json:"code"`
	Name      string    `json:"name"` // Chinese name, e.g. 企业设立登记
	NameEN    string    `json:"name_en"`
	Category  string    `json:"category"` // CategoryEnterprise or CategoryResident
	TimeLimit TimeLimit `json:"time_limit"`
	// Destinations are the agency ids a packet for this item may be sent
	// to; empty means any reviewing agency.
	Destinations []string   `json:"destinations,omitempty"`
	Materials    []Material `json:"materials"`
}

// TimeLimit is the promised processing time (承诺时限). Days 0 means on the
// spot (即来即办, same day); Text is what windows display.
type TimeLimit struct {
	Days        int    `json:"days"`
	WorkingDays bool   `json:"working_days"`
	Text        string `json:"text"`
}

// Material is one document of a packet. Kind is the stable machine name used
// as the multipart form name; Types lists the content types accepted, as
// detected from the bytes (see filetype.DetectHead), never as declared by the client.
type Material struct {
	Kind     string   `json:"kind"`
	Name     string   `json:"name"` // Chinese name
	NameEN   string   `json:"name_en"`
	Required bool     `json:"required"`
	Types    []string `json:"types"`
	MaxBytes int64    `json:"max_bytes"`
}

// Content types a material may have (see package filetype).
const (
	TypePDF  = filetype.PDF
	TypeOFD  = filetype.OFD
	TypeJPEG = filetype.JPEG
	TypePNG  = filetype.PNG
)

// ErrUnsupportedType is a file of a type the material does not take (415).
var ErrUnsupportedType = filetype.ErrUnsupported

// DefaultMaxBytes is the size cap of a material that sets none.
const DefaultMaxBytes = 20 << 20

// Item categories.
const (
	CategoryEnterprise = "enterprise"
	CategoryResident   = "resident"
)

// knownTypes are the content types a catalogue may list.
var knownTypes = []string{TypePDF, TypeOFD, TypeJPEG, TypePNG}

// Item returns the item with the given code.
func (c *Catalog) Item(code string) (*Item, bool) {
	if c == nil {
		return nil, false
	}
	for i := range c.Items {
		if c.Items[i].Code == code {
			return &c.Items[i], true
		}
	}
	return nil, false
}

// Material returns the item's material of the given kind.
func (it *Item) Material(kind string) (*Material, bool) {
	if it == nil {
		return nil, false
	}
	for i := range it.Materials {
		if it.Materials[i].Kind == kind {
			return &it.Materials[i], true
		}
	}
	return nil, false
}

// AllowsDestination reports whether a packet for the item may go to agency.
func (it *Item) AllowsDestination(agency string) bool {
	return len(it.Destinations) == 0 || slices.Contains(it.Destinations, agency)
}

// Accepts reports whether a file of the detected content type may be
// uploaded as this material.
func (m *Material) Accepts(contentType string) bool {
	return slices.Contains(m.Types, contentType)
}

// Normalize fills defaults into a catalogue loaded from a config file:
// MaxBytes 0 becomes DefaultMaxBytes. Call it before Validate.
func (c *Catalog) Normalize() {
	for i := range c.Items {
		for j := range c.Items[i].Materials {
			if m := &c.Items[i].Materials[j]; m.MaxBytes == 0 {
				m.MaxBytes = DefaultMaxBytes
			}
		}
	}
}

// Validate checks a catalogue loaded from a config file and reports every
// problem found, not just the first: unique non-empty item codes, a known
// category, unique kinds per item, known content types, MaxBytes > 0 and at
// least one required material per item.
func (c *Catalog) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("catalog: "+format, args...))
	}
	if c == nil || len(c.Items) == 0 {
		return errors.New("catalog: no items")
	}
	codes := map[string]bool{}
	for i, it := range c.Items {
		switch {
		case it.Code == "":
			bad("item %d: empty code", i)
		case codes[it.Code]:
			bad("item %s: duplicate code", it.Code)
		}
		codes[it.Code] = true
		if it.Name == "" {
			bad("item %s: empty name", it.Code)
		}
		if it.Category != CategoryEnterprise && it.Category != CategoryResident {
			bad("item %s: category %q is neither %q nor %q", it.Code, it.Category, CategoryEnterprise, CategoryResident)
		}
		if it.TimeLimit.Days < 0 {
			bad("item %s: negative time limit", it.Code)
		}
		dests := map[string]bool{}
		for _, d := range it.Destinations {
			if d == "" || dests[d] {
				bad("item %s: empty or duplicate destination %q", it.Code, d)
			}
			dests[d] = true
		}
		kinds := map[string]bool{}
		required := false
		for j, m := range it.Materials {
			switch {
			case m.Kind == "":
				bad("item %s: material %d: empty kind", it.Code, j)
			case kinds[m.Kind]:
				bad("item %s: duplicate material kind %q", it.Code, m.Kind)
			}
			kinds[m.Kind] = true
			required = required || m.Required
			if len(m.Types) == 0 {
				bad("item %s: material %s: no content types", it.Code, m.Kind)
			}
			for _, t := range m.Types {
				if !slices.Contains(knownTypes, t) {
					bad("item %s: material %s: unknown content type %q", it.Code, m.Kind, t)
				}
			}
			if m.MaxBytes <= 0 {
				bad("item %s: material %s: max_bytes must be positive", it.Code, m.Kind)
			}
		}
		if !required {
			bad("item %s: no required material", it.Code)
		}
	}
	return errors.Join(errs...)
}

// Demo destinations of the starter catalogue, as functions so that every
// DefaultCatalog gets its own slices.
func enterpriseDests() []string {
	return []string{"qingpu-amr", "qingpu-window", "wujiang-window", "jiashan-window"}
}
func windowDests() []string { return []string{"qingpu-window", "wujiang-window", "jiashan-window"} }
func medicareDests() []string {
	return []string{"wujiang-medicare", "qingpu-window", "wujiang-window", "jiashan-window"}
}

// Time limits of the starter catalogue.
var (
	onTheSpot  = TimeLimit{Days: 0, Text: "即来即办"}
	threeWDays = TimeLimit{Days: 3, WorkingDays: true, Text: "3个工作日"}
)

// DefaultCatalog returns the starter catalogue (docs/domain.md): 13 cross-region
// items. Each call returns a fresh copy that the caller may modify.
func DefaultCatalog() *Catalog {
	return &Catalog{Items: []Item{
		{
			Code: "ENT-SETUP", Name: "企业设立登记", NameEN: "Company establishment registration",
			Category:     CategoryEnterprise,
			TimeLimit:    TimeLimit{Days: 3, WorkingDays: true, Text: "即来即办；需核实的3个工作日内办结，情况复杂的延长3个工作日"},
			Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "公司登记（备案）申请书", "Registration application form", true),
				scan("applicant_id", "申请人主体资格文件或自然人身份证件", "Applicant's qualification document or identity document", true),
				scan("address_proof", "住所使用相关文件", "Proof of address", true),
				scan("articles", "公司章程", "Articles of association", true),
				scan("appointments", "法定代表人、董事、监事的任职文件", "Appointment documents of the legal representative, directors and supervisors", true),
			),
		},
		{
			Code: "ENT-CHANGE", Name: "企业变更登记", NameEN: "Company change registration",
			Category: CategoryEnterprise, TimeLimit: threeWDays, Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "公司变更登记申请书", "Change registration application form", true),
				scan("business_license", "营业执照", "Business licence", true),
				scan("amended_articles", "修改后的公司章程或章程修正案", "Amended articles of association", true),
				scan("address_proof", "新住所使用相关文件", "Proof of the new address", false),
			),
		},
		{
			Code: "ENT-DEREG-S", Name: "简易注销", NameEN: "Simplified deregistration",
			Category:     CategoryEnterprise,
			TimeLimit:    TimeLimit{Days: 20, Text: "20日公示期满后办理"},
			Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "注销登记申请书", "Deregistration application form", true),
				scan("investor_undertaking", "全体投资人承诺书", "Undertaking of all investors", true),
			),
		},
		{
			Code: "ENT-DEREG", Name: "普通注销", NameEN: "Deregistration",
			Category: CategoryEnterprise, TimeLimit: threeWDays, Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "注销登记申请书", "Deregistration application form", true),
				scan("liquidation_report", "清算报告", "Liquidation report", true),
				scan("shareholder_resolution", "股东会决议", "Shareholders' resolution", true),
			),
		},
		{
			Code: "IND-SETUP", Name: "个体工商户设立", NameEN: "Sole trader registration",
			Category:     CategoryEnterprise,
			TimeLimit:    TimeLimit{Days: 3, WorkingDays: true, Text: "即来即办；需核实的3个工作日内办结"},
			Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "个体工商户登记（备案）申请书", "Sole trader registration application form", true),
				scan("applicant_id", "经营者身份证明", "Operator's identity document", true),
				scan("premises_proof", "经营场所使用证明", "Proof of business premises", true),
			),
		},
		{
			Code: "ENT-FOOD", Name: "食品经营许可", NameEN: "Food business licence",
			Category:     CategoryEnterprise,
			TimeLimit:    TimeLimit{Days: 10, WorkingDays: true, Text: "10个工作日"},
			Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "食品经营许可申请书", "Food business licence application form", true),
				scan("entity_qualification", "营业执照或其他主体资格证明文件", "Entity qualification document", true),
				scan("premises_layout", "经营场所和设备布局、操作流程等文件", "Premises and equipment layout", true),
				scan("food_safety_rules", "食品安全自查、从业人员健康管理等食品安全规章制度", "Food-safety rules", true),
				scan("food_safety_manager", "食品安全管理人员证明", "Food-safety manager certificate", false),
			),
		},
		{
			Code: "ENT-IPPL", Name: "工业产品生产许可证", NameEN: "Industrial product production licence",
			Category:     CategoryEnterprise,
			TimeLimit:    TimeLimit{Days: 30, Text: "30日"},
			Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "工业产品生产许可证申请书", "Industrial product licence application form", true),
				scan("business_license", "营业执照", "Business licence", true),
				scan("self_undertaking", "自我承诺声明", "Self-undertaking", true),
			),
		},
		{
			Code: "ENT-REISSUE", Name: "营业执照补领/换发", NameEN: "Business licence reissue or replacement",
			Category: CategoryEnterprise, TimeLimit: onTheSpot, Destinations: enterpriseDests(),
			Materials: materials(
				scan("application_form", "营业执照补领/换发申请书", "Reissue application form", true),
				scan("loss_statement", "遗失声明", "Loss statement", false),
			),
		},
		{
			Code: "RES-MARR-ARCH", Name: "婚姻登记档案查询", NameEN: "Marriage record search",
			Category: CategoryResident, TimeLimit: onTheSpot, Destinations: windowDests(),
			Materials: materials(
				scan("applicant_id", "居民身份证", "Resident identity card", true),
				scan("household_register", "户口簿", "Household register", false),
			),
		},
		{
			Code: "RES-MED-REMOTE", Name: "医保异地就医结算备案", NameEN: "Out-of-province medical treatment filing",
			Category:     CategoryResident,
			TimeLimit:    TimeLimit{Days: 1, Text: "1日"},
			Destinations: medicareDests(),
			Materials: materials(
				scan("applicant_id", "居民身份证或社会保障卡", "Identity card or social-security card", true),
				scan("filing_form", "异地就医登记备案表", "Medical treatment filing form", true),
				scan("residence_proof", "居住证或个人承诺书", "Residence permit or personal undertaking", true),
				scan("posting_certificate", "单位派驻证明", "Employer's posting certificate", false),
			),
		},
		{
			Code: "RES-HUKOU-CERT", Name: "户籍事项证明", NameEN: "Household-registration certificate",
			Category: CategoryResident, TimeLimit: onTheSpot, Destinations: windowDests(),
			Materials: materials(
				scan("applicant_id", "居民身份证", "Resident identity card", true),
			),
		},
		{
			Code: "RES-PENSION", Name: "养老保险关系转移接续", NameEN: "Pension insurance transfer",
			Category:     CategoryResident,
			TimeLimit:    TimeLimit{Days: 45, WorkingDays: true, Text: "45个工作日（分三个阶段）"},
			Destinations: windowDests(),
			Materials: materials(
				scan("applicant_id", "居民身份证或社会保障卡", "Identity card or social-security card", true),
				scan("application_form", "养老保险关系转移接续申请表", "Pension transfer application form", true),
				scan("contribution_record", "参保缴费凭证", "Contribution record", true),
			),
		},
		{
			Code: "RES-HPF-PROOF", Name: "异地贷款缴存使用证明", NameEN: "Housing-fund certificate for an out-of-area mortgage",
			Category: CategoryResident, TimeLimit: onTheSpot, Destinations: windowDests(),
			Materials: materials(
				scan("applicant_id", "居民身份证", "Resident identity card", true),
			),
		},
	}}
}

// scan is a material handed in as a scan or an e-document.
func scan(kind, name, nameEN string, required bool) Material {
	return Material{
		Kind: kind, Name: name, NameEN: nameEN, Required: required,
		Types: slices.Clone(knownTypes), MaxBytes: DefaultMaxBytes,
	}
}

// materials adds what every cross-region item needs to an item's own list:
// the signed consent form first, the applicant's ID (unless the item names
// it more precisely), and the agent's power of attorney and ID, optional
// because most applicants come in person.
func materials(own ...Material) []Material {
	ms := []Material{scan("consent_form", "长三角地区政务服务“一网通办”服务同意书", "Signed cross-region service consent form", true)}
	if !slices.ContainsFunc(own, func(m Material) bool { return m.Kind == "applicant_id" }) {
		ms = append(ms, scan("applicant_id", "申请人身份证明或主体资格文件", "Applicant's identity or qualification document", true))
	}
	ms = append(ms, own...)
	return append(ms,
		scan("power_of_attorney", "授权委托书", "Power of attorney", false),
		scan("agent_id", "代理人身份证件", "Agent's identity document", false),
	)
}
