package githubtest

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
	op, params := matchOutsideSubset("DELETE", "/applications/Iv1.abc/token")
	if op == nil || !op.outsideSubset || params["client_id"] != "Iv1.abc" {
		t.Errorf("match: %+v %v", op, params)
	}
	if op, _ := matchOutsideSubset("GET", "/applications/Iv1.abc/token"); op != nil {
		t.Errorf("GET matched %s", op.key)
	}
}
