package gateway

import (
	"context"
	"strings"
	"testing"
)

// TestNewRejectsBadAgencies: a deployment's agencies are checked with the
// registered validators (region codes by GB/T 2260 shape) when it starts.
func TestNewRejectsBadAgencies(t *testing.T) {
	g, _, _ := testGateway(t)
	for _, tc := range []struct {
		agency Agency
		want   string
	}{
		{Agency{ID: "x", Name: "X", Region: "999999", Roles: []string{RoleReviewer}}, "region"},
		{Agency{ID: "x", Name: "X", Region: "310118", Roles: []string{"admin"}}, "oneof"},
		{Agency{ID: "", Name: "X", Region: "310118", Roles: []string{RoleReviewer}}, "required"},
		{Agency{ID: "qingpu-amr", Name: "dup", Region: "310118", Roles: []string{RoleReviewer}}, "twice"},
	} {
		cfg := g.cfg
		cfg.StateDir = t.TempDir()
		cfg.Agencies = append(DemoAgencies(), tc.agency)
		if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("agency %+v: %v, want an error about %s", tc.agency, err, tc.want)
		}
	}
}
