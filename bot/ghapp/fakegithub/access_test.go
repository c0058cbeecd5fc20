package fakegithub

import "testing"

// An endpoint served outside the subset skips schema checks: once the subset
// describes it, it belongs in routes.
func TestOutsideSubsetRoutesAreNotInTheSpec(t *testing.T) {
	sp := mustSpec()
	for key := range outsideSubsetRoutes {
		if sp.byKey[key] != nil {
			t.Errorf("%q is in openapi-subset.json: move it from outsideSubsetRoutes to routes", key)
		}
		if routes[key] != nil {
			t.Errorf("%q is in both route tables", key)
		}
	}
	op, params := matchOutsideSubset("GET", "/orgs/acme/teams/release-approvers/memberships/alice")
	if op == nil || !op.outsideSubset || params["team_slug"] != "release-approvers" || params["username"] != "alice" {
		t.Errorf("match: %+v %v", op, params)
	}
	if op, _ := matchOutsideSubset("PUT", "/orgs/acme/teams/x/memberships/alice"); op != nil {
		t.Errorf("PUT matched %s", op.key)
	}
}
