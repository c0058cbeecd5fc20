package githubapp

import "encoding/json"

// PurposePermissions is the union of the permissions the token purposes
// ask for (tokens.go), the higher level where two ask for one.
func PurposePermissions() map[string]string {
	out := map[string]string{}
	for _, p := range []purpose{purposeCheckout, purposeContents, purposeChecks, purposeDeployments, purposeComments, purposeCollaborators, purposeMembers} {
		b, err := json.Marshal(p.ask())
		if err != nil {
			panic(err)
		}
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			panic(err)
		}
		for name, level := range m {
			if levels[level] > levels[out[name]] {
				out[name] = level
			}
		}
	}
	return out
}
