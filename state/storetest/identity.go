package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stagehand-dev/stagehand/bot"
)

// Programs are keyed by GitHub's repository id (issue 10): a rename or a
// transfer keeps a program and its history; a repository deleted and
// created again under the same name gets a new, empty program.

func ensure(t *testing.T, s bot.Store, installationID int64, r bot.Repository) bot.Program {
	t.Helper()
	var p bot.Program
	update(t, s, func(tx bot.Tx) (err error) {
		p, err = tx.EnsureProgram(t.Context(), installationID, r)
		return err
	})
	return p
}

// history is what a program has accumulated: its variables and its
// executions' commits, newest first.
type history struct {
	Variables map[string]string // the production variables
	Commits   []string
}

// withHistory gives program p a production variable and an execution.
func withHistory(t *testing.T, s bot.Store, p bot.Program, commit string) history {
	t.Helper()
	update(t, s, func(tx bot.Tx) error { return tx.SetVariable(t.Context(), p.ID, bot.Production, "TOKEN_NAME", commit) })
	newExecution(t, s, bot.Execution{ProgramID: p.ID, Pipeline: bot.StageOnly, Commit: commit, State: bot.ExecutionSucceeded})
	return history{Variables: map[string]string{"TOKEN_NAME": commit}, Commits: []string{commit}}
}

func historyOf(t *testing.T, s bot.Store, programID int64) history {
	t.Helper()
	h := history{}
	view(t, s, func(tx bot.Tx) (err error) {
		if h.Variables, err = tx.Variables(t.Context(), programID, bot.Production); err != nil {
			return err
		}
		es, err := tx.Executions(t.Context(), bot.ExecutionFilter{ProgramID: programID})
		for _, e := range es {
			h.Commits = append(h.Commits, e.Commit)
		}
		return err
	})
	return h
}

// lookups returns what ProgramByName and ProgramByGitHubID find; a lookup
// that finds nothing gives the zero Program.
func lookups(t *testing.T, s bot.Store, owner, repo string, githubID int64) (byName, byID bot.Program) {
	t.Helper()
	view(t, s, func(tx bot.Tx) (err error) {
		if byName, err = tx.ProgramByName(t.Context(), owner, repo); err != nil && !errors.Is(err, bot.ErrNotFound) {
			return err
		}
		if byID, err = tx.ProgramByGitHubID(t.Context(), githubID); err != nil && !errors.Is(err, bot.ErrNotFound) {
			return err
		}
		return nil
	})
	return byName, byID
}

func testProgramRenamed(t *testing.T, s bot.Store) {
	p := ensure(t, s, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello", DefaultBranch: "main"})
	want := bot.Program{ID: p.ID, InstallationID: 1, GitHubID: 101, Owner: "octo", Repo: "hello", DefaultBranch: "main"}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Fatalf("EnsureProgram (-want +got):\n%s", diff)
	}
	wantHistory := withHistory(t, s, p, "c1")
	update(t, s, func(tx bot.Tx) error { return tx.SetProgramRemoved(t.Context(), p.ID, true) })

	steps := []struct {
		name string
		r    bot.Repository
		inst int64
		want bot.Program
	}{
		// A payload without the default branch (installation events) keeps it.
		{"renamed", bot.Repository{ID: 101, Owner: "octo", Name: "hola"}, 1,
			bot.Program{ID: p.ID, InstallationID: 1, GitHubID: 101, Owner: "octo", Repo: "hola", DefaultBranch: "main"}},
		{"transferred", bot.Repository{ID: 101, Owner: "acme", Name: "hola", DefaultBranch: "main"}, 2,
			bot.Program{ID: p.ID, InstallationID: 2, GitHubID: 101, Owner: "acme", Repo: "hola", DefaultBranch: "main"}},
		{"default branch changed", bot.Repository{ID: 101, Owner: "acme", Name: "hola", DefaultBranch: "trunk"}, 2,
			bot.Program{ID: p.ID, InstallationID: 2, GitHubID: 101, Owner: "acme", Repo: "hola", DefaultBranch: "trunk"}},
		// An unknown installation keeps the one recorded.
		{"case changed", bot.Repository{ID: 101, Owner: "Acme", Name: "Hola"}, 0,
			bot.Program{ID: p.ID, InstallationID: 2, GitHubID: 101, Owner: "Acme", Repo: "Hola", DefaultBranch: "trunk"}},
	}
	for _, st := range steps {
		got := ensure(t, s, st.inst, st.r)
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: EnsureProgram (-want +got):\n%s", st.name, diff)
		}
		byName, byID := lookups(t, s, st.r.Owner, st.r.Name, st.r.ID)
		if diff := cmp.Diff(st.want, byName); diff != "" {
			t.Errorf("%s: ProgramByName(%s/%s) (-want +got):\n%s", st.name, st.r.Owner, st.r.Name, diff)
		}
		if diff := cmp.Diff(st.want, byID); diff != "" {
			t.Errorf("%s: ProgramByGitHubID(%d) (-want +got):\n%s", st.name, st.r.ID, diff)
		}
		if diff := cmp.Diff(wantHistory, historyOf(t, s, got.ID)); diff != "" {
			t.Errorf("%s: the program's history (-want +got):\n%s", st.name, diff)
		}
	}
	if byName, _ := lookups(t, s, "octo", "hello", 0); byName != (bot.Program{}) {
		t.Errorf("ProgramByName of the old name = %+v, want not found", byName)
	}

	// The old name is free for another repository, which starts empty.
	other := ensure(t, s, 1, bot.Repository{ID: 202, Owner: "octo", Name: "hello"})
	if other.ID == p.ID {
		t.Fatalf("a new repository under the old name got the renamed repository's program %d", p.ID)
	}
	if diff := cmp.Diff(history{Variables: map[string]string{}}, historyOf(t, s, other.ID), equateEmpty); diff != "" {
		t.Errorf("the new repository's history (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantHistory, historyOf(t, s, p.ID)); diff != "" {
		t.Errorf("the renamed program's history after the old name was taken (-want +got):\n%s", diff)
	}
}

func testProgramOfRecreatedRepository(t *testing.T, s bot.Store) {
	ctx := t.Context()
	old := ensure(t, s, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello", DefaultBranch: "main"})
	oldHistory := withHistory(t, s, old, "c1")

	// Deleted on GitHub and created again under the same name: a new id.
	fresh := ensure(t, s, 1, bot.Repository{ID: 202, Owner: "octo", Name: "Hello", DefaultBranch: "trunk"})
	if fresh.ID == old.ID {
		t.Fatalf("the re-created repository got the old program %d", old.ID)
	}
	wantFresh := bot.Program{ID: fresh.ID, InstallationID: 1, GitHubID: 202, Owner: "octo", Repo: "Hello", DefaultBranch: "trunk"}
	if diff := cmp.Diff(wantFresh, fresh); diff != "" {
		t.Errorf("the new program (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(history{Variables: map[string]string{}}, historyOf(t, s, fresh.ID), equateEmpty); diff != "" {
		t.Errorf("the new program's history (-want +got):\n%s", diff)
	}
	// The name leads to the new program, and nothing of the old one is
	// visible through it.
	var vars map[string]string
	view(t, s, func(tx bot.Tx) error {
		p, err := tx.ProgramByName(ctx, "octo", "hello")
		if err != nil {
			return err
		}
		if diff := cmp.Diff(wantFresh, p); diff != "" {
			t.Errorf("ProgramByName(octo/hello) (-want +got):\n%s", diff)
		}
		vars, err = tx.Variables(ctx, p.ID, bot.Production)
		return err
	})
	if len(vars) != 0 {
		t.Errorf("variables seen through the name = %v, want none", vars)
	}

	// The old program keeps its history under its old id, removed.
	wantOld := bot.Program{ID: old.ID, InstallationID: 1, GitHubID: 101, Owner: "octo", Repo: "hello", DefaultBranch: "main", Removed: true}
	_, byID := lookups(t, s, "octo", "hello", 101)
	if diff := cmp.Diff(wantOld, byID); diff != "" {
		t.Errorf("ProgramByGitHubID(101) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(oldHistory, historyOf(t, s, old.ID)); diff != "" {
		t.Errorf("the old program's history (-want +got):\n%s", diff)
	}
	var all []bot.Program
	view(t, s, func(tx bot.Tx) (err error) {
		all, err = tx.Programs(ctx)
		return err
	})
	if diff := cmp.Diff([]bot.Program{wantOld, wantFresh}, all); diff != "" {
		t.Errorf("Programs (-want +got):\n%s", diff)
	}
	// A caller that knows only the name gets the new program.
	if got := newProgram(t, s, 1, "octo", "hello"); got.ID != fresh.ID {
		t.Errorf("EnsureProgram by name = program %d, want the new one %d", got.ID, fresh.ID)
	}
}

func testProgramAdoptsGitHubID(t *testing.T, s bot.Store) {
	// Recorded before ids were kept.
	legacy := newProgram(t, s, 1, "octo", "hello")
	if legacy.GitHubID != 0 {
		t.Fatalf("EnsureProgram without an id: GitHubID = %d, want 0", legacy.GitHubID)
	}
	legacyHistory := withHistory(t, s, legacy, "c1")

	got := ensure(t, s, 1, bot.Repository{ID: 101, Owner: "octo", Name: "hello", DefaultBranch: "main"})
	want := bot.Program{ID: legacy.ID, InstallationID: 1, GitHubID: 101, Owner: "octo", Repo: "hello", DefaultBranch: "main"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EnsureProgram of a legacy program (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(legacyHistory, historyOf(t, s, got.ID)); diff != "" {
		t.Errorf("the adopting program's history (-want +got):\n%s", diff)
	}
	// Once adopted, the id stays when a caller gives only the name.
	if again := newProgram(t, s, 1, "octo", "hello"); again != want {
		t.Errorf("EnsureProgram by name after the adoption = %+v, want %+v", again, want)
	}

	// A legacy program under a name a known repository is renamed to
	// belonged to another repository: it gives the name up.
	stale := newProgram(t, s, 1, "octo", "stale")
	renamed := ensure(t, s, 1, bot.Repository{ID: 101, Owner: "octo", Name: "stale"})
	if renamed.ID != legacy.ID {
		t.Errorf("renaming 101 to octo/stale: program %d, want %d", renamed.ID, legacy.ID)
	}
	view(t, s, func(tx bot.Tx) error {
		p, err := tx.Program(t.Context(), stale.ID)
		if err != nil {
			return err
		}
		wantStale := bot.Program{ID: stale.ID, InstallationID: 1, Owner: "octo", Repo: "stale", Removed: true}
		if diff := cmp.Diff(wantStale, p); diff != "" {
			t.Errorf("the legacy program that lost its name (-want +got):\n%s", diff)
		}
		return nil
	})
	if byName, _ := lookups(t, s, "octo", "stale", 0); byName.ID != legacy.ID {
		t.Errorf("ProgramByName(octo/stale) = program %d, want %d", byName.ID, legacy.ID)
	}
}

// testConcurrentEnsureProgram has goroutines see one new repository at
// once, as replicas handling its first pushes do: one program, no error.
func testConcurrentEnsureProgram(t *testing.T, s bot.Store) {
	const workers = 8
	ids := make([]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			err := s.Update(t.Context(), func(tx bot.Tx) error {
				p, err := tx.EnsureProgram(t.Context(), 1, bot.Repository{ID: 303, Owner: "octo", Name: "busy"})
				ids[w] = p.ID
				return err
			})
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	for w, id := range ids {
		if id != ids[0] {
			t.Errorf("worker %d got program %d, worker 0 got %d", w, id, ids[0])
		}
	}
	var all []bot.Program
	view(t, s, func(tx bot.Tx) (err error) {
		all, err = tx.Programs(t.Context())
		return err
	})
	if len(all) != 1 {
		t.Errorf("Programs = %+v, want one", all)
	}
}
