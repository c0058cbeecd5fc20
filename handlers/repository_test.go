package handlers

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp/githubtest"
	"github.com/stagehand-dev/stagehand/handlers/webhook"
)

// The repository of push/branch-created.json.
const pushRepoID = 186853002

// editedPayload is a real payload example with edit applied.
func editedPayload(t *testing.T, name string, edit func(p map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(githubtest.Payload(name), &p); err != nil {
		t.Fatal(err)
	}
	edit(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setRepository names the repository of a payload.
func setRepository(p map[string]any, id int64, owner, name string) {
	r := p["repository"].(map[string]any)
	r["id"], r["name"], r["full_name"] = id, name, owner+"/"+name
	r["owner"].(map[string]any)["login"] = owner
}

// renamedPayload is repository/renamed.json for repository id, renamed
// from owner/from to owner/to.
func renamedPayload(t *testing.T, id int64, owner, from, to string) []byte {
	return editedPayload(t, "repository/renamed.json", func(p map[string]any) {
		setRepository(p, id, owner, to)
		p["changes"] = map[string]any{"repository": map[string]any{"name": map[string]any{"from": from}}}
	})
}

// repositoryEvent is repository/renamed.json (Octocoders/Hello-World) as
// another action: its changes (none when nil) and default branch set.
func repositoryEvent(t *testing.T, action string, changes map[string]any, defaultBranch string) []byte {
	return editedPayload(t, "repository/renamed.json", func(p map[string]any) {
		p["action"], p["changes"] = action, changes
		if changes == nil {
			delete(p, "changes")
		}
		p["repository"].(map[string]any)["default_branch"] = defaultBranch
	})
}

// pushFrom is push/branch-created.json sent by repository id, owner/name.
func pushFrom(t *testing.T, id int64, owner, name, after string) []byte {
	return editedPayload(t, "push/branch-created.json", func(p map[string]any) {
		setRepository(p, id, owner, name)
		p["repository"].(map[string]any)["owner"].(map[string]any)["name"] = owner // push payloads name the owner twice
		p["after"] = after
	})
}

func (e *env) deliver(t *testing.T, guid, event string, payload []byte) {
	t.Helper()
	if err := e.h.HandleDelivery(context.Background(), webhook.Delivery{GUID: guid, Event: event, Payload: payload}); err != nil {
		t.Fatalf("%s %s: %v", event, guid, err)
	}
}

// programs lists the store's programs.
func (e *env) programs(t *testing.T) []bot.Program {
	t.Helper()
	var ps []bot.Program
	err := e.store.View(context.Background(), func(tx bot.Tx) (err error) {
		ps, err = tx.Programs(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// setVariable sets a production variable of program id.
func (e *env) setVariable(t *testing.T, id int64, key, value string) {
	t.Helper()
	err := e.store.Update(context.Background(), func(tx bot.Tx) error {
		return tx.SetVariable(context.Background(), id, bot.Production, key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// variables are program id's production variables.
func (e *env) variables(t *testing.T, id int64) map[string]string {
	t.Helper()
	var vars map[string]string
	err := e.store.View(context.Background(), func(tx bot.Tx) (err error) {
		vars, err = tx.Variables(context.Background(), id, bot.Production)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return vars
}

// pushedTo returns the ids of the programs that recorded what a push of
// commit did.
func (e *env) pushedTo(t *testing.T, commit string) []int64 {
	t.Helper()
	var ids []int64
	err := e.store.View(context.Background(), func(tx bot.Tx) error {
		ps, err := tx.Programs(context.Background())
		if err != nil {
			return err
		}
		for _, p := range ps {
			rs, err := tx.TriggerRecords(context.Background(), p.ID, commit)
			if err != nil {
				return err
			}
			if len(rs) > 0 {
				ids = append(ids, p.ID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestRepositoryRenamedKeepsTheProgram: after a repository renamed event, a
// push under the new name lands on the same program, with its variables.
func TestRepositoryRenamedKeepsTheProgram(t *testing.T) {
	e := newEnv(t)
	const sha1, sha2 = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	e.deliver(t, "g-push-1", "push", pushFrom(t, pushRepoID, owner, repo, sha1))
	ps := e.programs(t)
	if len(ps) != 1 {
		t.Fatalf("programs after the first push = %+v, want one", ps)
	}
	prog := ps[0]
	if prog.GitHubID != pushRepoID {
		t.Errorf("GitHubID after the push = %d, want %d", prog.GitHubID, pushRepoID)
	}
	e.setVariable(t, prog.ID, "REGION", "eu")

	e.deliver(t, "g-renamed", "repository", renamedPayload(t, pushRepoID, owner, repo, "Hola"))
	want := prog
	want.Repo = "Hola"
	if diff := cmp.Diff([]bot.Program{want}, e.programs(t)); diff != "" {
		t.Errorf("programs after the rename (-want +got):\n%s", diff)
	}

	e.gh.AddRepo(inst, owner, "Hola")
	e.deliver(t, "g-push-2", "push", pushFrom(t, pushRepoID, owner, "Hola", sha2))
	if diff := cmp.Diff([]bot.Program{want}, e.programs(t)); diff != "" {
		t.Errorf("programs after a push under the new name (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{prog.ID}, e.pushedTo(t, sha2)); diff != "" {
		t.Errorf("programs the second push recorded on (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"REGION": "eu"}, e.variables(t, prog.ID)); diff != "" {
		t.Errorf("variables after the rename (-want +got):\n%s", diff)
	}
}

// TestRepositoryRecreatedDoesNotInherit: a repository deleted and created
// again under the same name (a new id) gets a new program: its push does
// not see the old program's variables.
func TestRepositoryRecreatedDoesNotInherit(t *testing.T) {
	e := newEnv(t)
	const sha1, sha2 = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	const recreatedID = 999000111
	e.deliver(t, "g-push-1", "push", pushFrom(t, pushRepoID, owner, repo, sha1))
	old := e.programs(t)[0]
	e.setVariable(t, old.ID, "DEPLOY_TOKEN_NAME", "old-prod")

	e.deliver(t, "g-push-2", "push", pushFrom(t, recreatedID, owner, repo, sha2))
	ps := e.programs(t)
	if len(ps) != 2 {
		t.Fatalf("programs = %+v, want the old one and a new one", ps)
	}
	fresh := ps[1]
	wantFresh := bot.Program{ID: fresh.ID, InstallationID: inst, GitHubID: recreatedID, Owner: owner, Repo: repo, DefaultBranch: "master"}
	if diff := cmp.Diff(wantFresh, fresh); diff != "" {
		t.Errorf("the re-created repository's program (-want +got):\n%s", diff)
	}
	if vars := e.variables(t, fresh.ID); len(vars) != 0 {
		t.Errorf("the new program's variables = %v, want none", vars)
	}
	if diff := cmp.Diff([]int64{fresh.ID}, e.pushedTo(t, sha2)); diff != "" {
		t.Errorf("programs the re-created repository's push recorded on (-want +got):\n%s", diff)
	}
	wantOld := old
	wantOld.Removed = true
	if diff := cmp.Diff(wantOld, ps[0]); diff != "" {
		t.Errorf("the old program (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"DEPLOY_TOKEN_NAME": "old-prod"}, e.variables(t, old.ID)); diff != "" {
		t.Errorf("the old program's variables (-want +got):\n%s", diff)
	}
}

// TestRepositoryEvents: each repository event changes the program of its
// repository id, and only that one; the payloads are GitHub's examples.
func TestRepositoryEvents(t *testing.T) {
	const id = 186853261 // the repository of the repository/*.json examples
	octocoders := bot.Repository{ID: id, Owner: "Octocoders", Name: "Hello-World", DefaultBranch: "master"}
	renamedFromOldName := map[string]any{"repository": map[string]any{"name": map[string]any{"from": "Old-Name"}}}
	tests := []struct {
		name    string
		seed    []bot.Repository // programs made before the event, in order
		payload func(t *testing.T) []byte
		want    []bot.Program // IDs are 1, 2, ... in the order seeded
	}{
		{
			name:    "renamed",
			seed:    []bot.Repository{{ID: id, Owner: "Octocoders", Name: "Old-Name"}, {ID: 7, Owner: "Octocoders", Name: "other"}},
			payload: func(t *testing.T) []byte { return repositoryEvent(t, "renamed", renamedFromOldName, "master") },
			want: []bot.Program{
				{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "master"},
				{ID: 2, InstallationID: 1, GitHubID: 7, Owner: "Octocoders", Repo: "other"},
			},
		},
		{
			name:    "renamed, recorded before ids were kept",
			seed:    []bot.Repository{{Owner: "Octocoders", Name: "Old-Name"}},
			payload: func(t *testing.T) []byte { return repositoryEvent(t, "renamed", renamedFromOldName, "master") },
			want:    []bot.Program{{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "master"}},
		},
		{
			name:    "transferred",
			seed:    []bot.Repository{{ID: id, Owner: "octocat", Name: "Hello-World", DefaultBranch: "master"}},
			payload: func(t *testing.T) []byte { return githubtest.Payload("repository/transferred.with-installation.json") },
			want:    []bot.Program{{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "master"}},
		},
		{
			name: "default branch changed",
			seed: []bot.Repository{octocoders},
			payload: func(t *testing.T) []byte {
				return repositoryEvent(t, "edited", map[string]any{"default_branch": map[string]any{"from": "master"}}, "main")
			},
			want: []bot.Program{{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "main"}},
		},
		{
			// The payload's default branch is not a change of it here.
			name: "description edited: nothing to change",
			seed: []bot.Repository{octocoders},
			payload: func(t *testing.T) []byte {
				return repositoryEvent(t, "edited", map[string]any{"description": map[string]any{"from": "old"}}, "main")
			},
			want: []bot.Program{{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "master"}},
		},
		{
			name:    "deleted",
			seed:    []bot.Repository{octocoders},
			payload: func(t *testing.T) []byte { return repositoryEvent(t, "deleted", nil, "master") },
			want:    []bot.Program{{ID: 1, InstallationID: 1, GitHubID: id, Owner: "Octocoders", Repo: "Hello-World", DefaultBranch: "master", Removed: true}},
		},
		{
			name:    "a name held by another repository is not followed",
			seed:    []bot.Repository{{ID: 7, Owner: "Octocoders", Name: "Old-Name"}},
			payload: func(t *testing.T) []byte { return repositoryEvent(t, "renamed", renamedFromOldName, "master") },
			want:    []bot.Program{{ID: 1, InstallationID: 1, GitHubID: 7, Owner: "Octocoders", Repo: "Old-Name"}},
		},
		{
			name:    "a repository that is not a program",
			payload: func(t *testing.T) []byte { return githubtest.Payload("repository/renamed.json") },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			err := e.store.Update(context.Background(), func(tx bot.Tx) error {
				for _, r := range tt.seed {
					if _, err := tx.EnsureProgram(context.Background(), 1, r); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			payload := tt.payload(t)
			e.deliver(t, "g-repository", "repository", payload)
			if diff := cmp.Diff(tt.want, e.programs(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("programs (-want +got):\n%s", diff)
			}
			// Redelivered: nothing changes.
			e.deliver(t, "g-repository", "repository", payload)
			if diff := cmp.Diff(tt.want, e.programs(t), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("programs after a redelivery (-want +got):\n%s", diff)
			}
		})
	}
}
