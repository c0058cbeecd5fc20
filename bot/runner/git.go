// Package runner prepares workspaces and runs the commands of pipeline
// steps: it checks out exactly one commit with git, answers ancestry and
// branch questions about a repository, runs a step's script in its own
// process group with a controlled environment, and keeps a size-capped log.
//
// It uses the standard library only and runs git and bash as programs.
// Process-group handling needs a Unix system (Linux in production).
package runner

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// CheckoutSpec names exactly one commit to fetch.
type CheckoutSpec struct {
	// GitURL is the base URL, e.g. "https://github.com/" or
	// "file:///srv/git/" (default "https://github.com/"). The clone URL is
	// GitURL + Owner + "/" + Repo + ".git"; for file:// bases, when that path
	// does not exist but GitURL + Owner + "/" + Repo is a directory, that
	// directory is used. Credentials in GitURL are refused.
	GitURL      string
	Owner, Repo string
	// Commit is the full (40 or 64 hex digit) commit sha.
	Commit string
	// Token is the installation token; empty for file:// repositories. It
	// is sent only in an HTTP Authorization header, never in a URL, a
	// process argument, a log or an error.
	Token string
	// Dir is the directory to create the checkout in: it must not exist or
	// be empty. IsAncestor uses it as a scratch repository.
	Dir string
}

// Checkout fetches exactly s.Commit into s.Dir (git init, fetch of that one
// commit with depth 1, detached checkout). When the server refuses to serve
// a commit by sha it falls back to fetching all branches and tags. On error
// the directory is left empty (or removed when Checkout created it).
func Checkout(ctx context.Context, s CheckoutSpec) (err error) {
	commit, err := checkSpec(s, s.Commit)
	if err != nil {
		return fmt.Errorf("runner: checkout: %w", err)
	}
	created, err := prepareEmptyDir(s.Dir)
	if err != nil {
		return fmt.Errorf("runner: checkout: %w", err)
	}
	defer func() {
		if err != nil {
			emptyDir(s.Dir, created)
			err = fmt.Errorf("runner: checkout %s/%s@%s: %w", s.Owner, s.Repo, commit, err)
		}
	}()
	g, err := newGit(s)
	if err != nil {
		return err
	}
	defer g.close()

	if _, err := g.run(ctx, s.Dir, "init", "-q"); err != nil {
		return err
	}
	// A remote named origin is convenient for step scripts; it holds the
	// URL only, never the token.
	if _, err := g.run(ctx, s.Dir, "remote", "add", "origin", g.url); err != nil {
		return err
	}
	if err := g.fetch(ctx, s.Dir, fetchShallow, commit); err != nil {
		return err
	}
	if _, err := g.run(ctx, s.Dir, "checkout", "-q", "--detach", commit); err != nil {
		return err
	}
	// What rev-parse HEAD would say, without its process: a detached
	// HEAD holds the sha.
	return checkHead(s.Dir, commit)
}

// IsAncestor reports whether ancestor is an ancestor of, or equal to,
// descendant (git merge-base --is-ancestor). s.Dir is a scratch repository:
// created when it does not exist or is empty, reused otherwise. Commits
// missing there are fetched with their full history (a shallow repository
// is unshallowed first); s.Commit is not used.
func IsAncestor(ctx context.Context, s CheckoutSpec, ancestor, descendant string) (ok bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("runner: is-ancestor %s/%s %s %s: %w", s.Owner, s.Repo, ancestor, descendant, err)
		}
	}()
	a, err := checkSpec(s, ancestor)
	if err != nil {
		return false, err
	}
	d, err := normalizeSHA(descendant)
	if err != nil {
		return false, err
	}
	g, err := newGit(s)
	if err != nil {
		return false, err
	}
	defer g.close()

	if !isGitRepo(s.Dir) {
		if _, err := prepareEmptyDir(s.Dir); err != nil {
			return false, err
		}
		if _, err := g.run(ctx, s.Dir, "init", "-q", "--bare"); err != nil {
			return false, err
		}
	}
	shallow, err := g.isShallow(ctx, s.Dir)
	if err != nil {
		return false, err
	}
	mode := fetchFull
	if shallow {
		mode = fetchUnshallow
	}
	var missing []string
	for _, c := range []string{a, d} {
		if shallow || !g.hasCommit(ctx, s.Dir, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		if err := g.fetch(ctx, s.Dir, mode, missing...); err != nil {
			return false, err
		}
	}
	_, err = g.run(ctx, s.Dir, "merge-base", "--is-ancestor", a, d)
	var ge *gitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ge) && ge.exitCode() == 1 && ctx.Err() == nil:
		return false, nil
	default:
		return false, err
	}
}

// ResolveBranch returns the sha of the commit branch points to on the
// remote (git ls-remote). s.Commit and s.Dir are not used.
func ResolveBranch(ctx context.Context, s CheckoutSpec, branch string) (sha string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("runner: resolve branch %s/%s %q: %w", s.Owner, s.Repo, branch, err)
		}
	}()
	if _, err := checkSpec(s, ""); err != nil {
		return "", err
	}
	ref := "refs/heads/" + strings.TrimPrefix(branch, "refs/heads/")
	if ref == "refs/heads/" || strings.ContainsAny(branch, " \t\n\x00") {
		return "", errors.New("invalid branch name")
	}
	g, err := newGit(s)
	if err != nil {
		return "", err
	}
	defer g.close()
	out, err := g.run(ctx, g.home, "ls-remote", g.url, ref)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		got, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && name == ref {
			return normalizeSHA(got)
		}
	}
	return "", errors.New("branch not found")
}

// checkSpec validates the repository part of s and, when commit is not
// empty, returns it normalized.
func checkSpec(s CheckoutSpec, commit string) (string, error) {
	for _, part := range []struct{ what, v string }{{"owner", s.Owner}, {"repo", s.Repo}} {
		if !validName(part.v) {
			return "", fmt.Errorf("invalid %s %q", part.what, part.v)
		}
	}
	if commit == "" {
		return "", nil
	}
	return normalizeSHA(commit)
}

// validName accepts GitHub owner and repository names.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." || strings.HasPrefix(s, "-") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// normalizeSHA accepts a full SHA-1 or SHA-256 object name.
func normalizeSHA(s string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	if len(l) != 40 && len(l) != 64 {
		return "", fmt.Errorf("%q is not a full commit sha", s)
	}
	for _, r := range l {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", fmt.Errorf("%q is not a full commit sha", s)
		}
	}
	return l, nil
}

// remoteURL builds the clone URL for s; it never holds credentials.
func remoteURL(s CheckoutSpec) (base, clone string, file bool, err error) {
	base = s.GitURL
	if base == "" {
		base = "https://github.com/"
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", "", false, fmt.Errorf("invalid git URL: %w", err)
	}
	if u.User != nil {
		return "", "", false, errors.New("the git URL must not hold credentials")
	}
	switch u.Scheme {
	case "https", "http":
	case "file":
		file = true
	default:
		return "", "", false, fmt.Errorf("unsupported git URL scheme %q", u.Scheme)
	}
	clone = base + s.Owner + "/" + s.Repo + ".git"
	if file {
		local := filepath.Join(filepath.FromSlash(u.Path), s.Owner, s.Repo)
		if _, err := os.Stat(local + ".git"); err != nil {
			if fi, err := os.Stat(local); err == nil && fi.IsDir() {
				clone = base + s.Owner + "/" + s.Repo
			}
		}
	}
	return base, clone, file, nil
}

// prepareEmptyDir makes sure dir exists and is empty; created reports
// whether it had to be created.
func prepareEmptyDir(dir string) (created bool, err error) {
	if dir == "" {
		return false, errors.New("no directory given")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, err
	case len(entries) > 0:
		return false, fmt.Errorf("directory %s is not empty", dir)
	}
	return false, nil
}

// emptyDir undoes prepareEmptyDir after a failure.
func emptyDir(dir string, created bool) {
	if created {
		os.RemoveAll(dir)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}

// isGitRepo reports whether dir is a non-bare or bare repository root.
func isGitRepo(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return true
	}
	for _, p := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}
