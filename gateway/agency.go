package gateway

import "slices"

// Roles a principal acts in.
const (
	RoleSubmitter = "submitter" // origin window: uploads packets, supplements, delivers
	RoleReviewer  = "reviewer"  // destination: receives, reviews, issues licences
	RoleAuditor   = "auditor"   // reads everything, checks the ledger
)

// Principal is an authenticated caller: an agency acting in one role.
type Principal struct {
	Agency string `json:"agency"`
	Role   string `json:"role"`
}

// Agency is a government office connected to the gateway.
type Agency struct {
	ID     string   `json:"id" validate:"required,max=64"`
	Name   string   `json:"name" validate:"required"`
	Region string   `json:"region" validate:"required,region"`                                     // GB/T 2260 code
	Roles  []string `json:"roles" validate:"required,min=1,dive,oneof=submitter reviewer auditor"` // roles its principals may hold
}

// Can reports whether the agency may act in role.
func (a *Agency) Can(role string) bool { return slices.Contains(a.Roles, role) }

// DemoAgencies are the agencies of the embedded default; their ids are a
// public contract.
func DemoAgencies() []Agency {
	both := []string{RoleSubmitter, RoleReviewer}
	return []Agency{
		{ID: "jiashan-window", Name: "嘉善县行政审批服务中心专窗", Region: "330421", Roles: both},
		{ID: "wujiang-window", Name: "吴江区行政审批局专窗", Region: "320509", Roles: both},
		{ID: "qingpu-window", Name: "青浦区行政服务中心专窗", Region: "310118", Roles: both},
		{ID: "qingpu-amr", Name: "青浦区市场监督管理局", Region: "310118", Roles: []string{RoleReviewer}},
		{ID: "wujiang-medicare", Name: "吴江区医疗保障局", Region: "320509", Roles: []string{RoleReviewer}},
		{ID: "yrd-audit", Name: "长三角一网通办审计", Region: "310000", Roles: []string{RoleAuditor}},
	}
}
