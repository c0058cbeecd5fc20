package worker

import (
	"context"
	"fmt"
	"os"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
	"github.com/stagehand-dev/stagehand/bot/runner"
)

// TokenSource gives an installation token for git over HTTPS on one
// repository of the installation, which may read that repository's contents
// and nothing else (githubapp.App.Token).
type TokenSource func(ctx context.Context, installationID int64, repo githubapp.Repository) (string, error)

// GitRepos reaches programs' repositories with git: checkouts for steps,
// ancestry for the rollback guard, branch heads for manual starts.
type GitRepos struct {
	BaseURL string      // --github-git-url
	Token   TokenSource // nil: no token
	Scratch string      // a directory for temporary repositories
	// Cache, when set, keeps recent checkouts: a step checking out a
	// commit of a repository that an earlier step checked out copies it
	// instead of fetching it again (its Dir must lie where no step can
	// see it: under the data directory).
	Cache *runner.CheckoutCache
}

func (g *GitRepos) spec(ctx context.Context, prog bot.Program, dir string) (runner.CheckoutSpec, error) {
	s := runner.CheckoutSpec{GitURL: g.BaseURL, Owner: prog.Owner, Repo: prog.Repo, Dir: dir}
	if g.Token != nil {
		// By id when the program has it (it survives a rename), else by name.
		tok, err := g.Token(ctx, prog.InstallationID, githubapp.Repository{ID: prog.GitHubID, Name: prog.Repo})
		if err != nil {
			return s, fmt.Errorf("getting a token for %s: %w", prog.FullName(), err)
		}
		s.Token = tok
	}
	return s, nil
}

// Checkout puts exactly commit into dir.
func (g *GitRepos) Checkout(ctx context.Context, prog bot.Program, commit, dir string) error {
	s, err := g.spec(ctx, prog, dir)
	if err != nil {
		return err
	}
	s.Commit = commit
	return checkout(ctx, g.Cache, s)
}

// checkout checks out s through cache, or afresh when cache is nil.
func checkout(ctx context.Context, cache *runner.CheckoutCache, s runner.CheckoutSpec) error {
	if cache == nil {
		return runner.Checkout(ctx, s)
	}
	_, err := cache.Checkout(ctx, s)
	return err
}

// IsAncestor reports whether ancestor is an ancestor of descendant.
func (g *GitRepos) IsAncestor(ctx context.Context, prog bot.Program, ancestor, descendant string) (bool, error) {
	dir, err := g.scratch()
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	s, err := g.spec(ctx, prog, dir)
	if err != nil {
		return false, err
	}
	return runner.IsAncestor(ctx, s, ancestor, descendant)
}

// HeadCommit returns the commit a branch points to.
func (g *GitRepos) HeadCommit(ctx context.Context, prog bot.Program, branch string) (string, error) {
	dir, err := g.scratch()
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	s, err := g.spec(ctx, prog, dir)
	if err != nil {
		return "", err
	}
	return runner.ResolveBranch(ctx, s, branch)
}

func (g *GitRepos) scratch() (string, error) {
	if err := os.MkdirAll(g.Scratch, 0o750); err != nil {
		return "", fmt.Errorf("creating the git scratch directory: %w", err)
	}
	return os.MkdirTemp(g.Scratch, "git-")
}

// RepoSource is the engine's view of repositories: branch heads through
// git, configuration files through the contents API.
type RepoSource struct {
	*GitRepos
	Files interface {
		FetchFile(ctx context.Context, installationID int64, owner, repo, path, ref string) ([]byte, error)
	}
}

// ReadConfig returns .github/stagehand.yml at a commit.
func (r RepoSource) ReadConfig(ctx context.Context, prog bot.Program, commit string) ([]byte, error) {
	return r.Files.FetchFile(ctx, prog.InstallationID, prog.Owner, prog.Repo, bot.ConfigPath, commit)
}
