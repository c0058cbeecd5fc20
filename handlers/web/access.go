package web

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// Permission is what a dashboard visitor may see of a program: its
// repository's permission on GitHub, as far as the dashboard cares.
type Permission int

// The permissions, in order.
const (
	NoAccess    Permission = iota // sees nothing: the program does not exist for them
	ReadAccess                    // sees the program, its executions and logs
	WriteAccess                   // sees its variables too
)

// viewer is who a request comes from: a signed-in person or a script's
// GitHub token.
type viewer struct {
	login     string
	key       string // the access cache's name for this session or token
	token     string // the GitHub token to ask with
	bearer    bool   // a token from Authorization: Bearer
	sessionID string // a signed-in person's session
	signIn    *SignIn
}

type viewerKey struct{}

// viewerFrom is the viewer SignIn.Require put in ctx, or nil.
func viewerFrom(ctx context.Context) *viewer {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	return v
}

// errSignInAgain: GitHub no longer takes the person's token.
var errSignInAgain = &bot.Refusal{Code: bot.RefusalSignIn,
	Message: "GitHub no longer accepts your sign-in with Stagehand (it was revoked or has expired): sign in again at /auth/login."}

// permission is what v may see of p. A session asks GitHub which
// repositories of p's installation the person can read (one call for the
// whole installation); a token asks for p's repository alone, so a
// fine-grained token sees only what it was given. Answers are kept for the
// access TTL.
func (v *viewer) permission(ctx context.Context, p bot.Program) (Permission, error) {
	s := v.signIn
	now := s.clock.Now()
	scope := "installation:" + strconv.FormatInt(p.InstallationID, 10)
	if v.bearer {
		scope = "repo:" + programKey(p)
	}
	key := accessKey{v.key, scope}
	e, ok := s.cache.get(key, now)
	if !ok {
		repos, err := v.readable(ctx, p)
		if errors.Is(err, githubapp.ErrTokenRefused) {
			if v.sessionID != "" {
				s.logger.InfoContext(ctx, "dashboard session ended: GitHub refuses its token", "login", v.login, bot.LogError, err)
				s.endSession(ctx, v.sessionID)
			}
			return NoAccess, errSignInAgain
		}
		if err != nil {
			s.logger.ErrorContext(ctx, "asking GitHub what a dashboard visitor may read", "login", v.login, bot.LogRepo, p.FullName(), bot.LogError, err)
			return NoAccess, &bot.Refusal{Code: bot.RefusalUnavailable, Message: fmt.Sprintf("Stagehand could not ask GitHub whether you can read %s; try again in a minute.", p.FullName())}
		}
		e = accessEntry{at: now, repos: map[string]Permission{}}
		for _, r := range repos {
			perm := ReadAccess
			if r.Write {
				perm = WriteAccess
			}
			e.repos["id:"+strconv.FormatInt(r.ID, 10)] = perm
			e.repos["name:"+strings.ToLower(r.Owner+"/"+r.Name)] = perm
		}
		s.cache.put(key, e)
	}
	return e.repos[programKey(p)], nil
}

// programKey names p's repository in an access entry: by GitHub's id when
// the program has it (a repository deleted and made again under the name
// is another one), else by name.
func programKey(p bot.Program) string {
	if p.GitHubID != 0 {
		return "id:" + strconv.FormatInt(p.GitHubID, 10)
	}
	return "name:" + strings.ToLower(p.FullName())
}

// readable asks GitHub which repositories v can read: those of p's
// installation for a session, p's repository alone for a token.
func (v *viewer) readable(ctx context.Context, p bot.Program) ([]githubapp.RepoAccess, error) {
	gh := v.signIn.github
	if !v.bearer {
		if p.InstallationID == 0 {
			return nil, nil
		}
		return gh.InstallationRepos(ctx, v.token, p.InstallationID)
	}
	r, ok, err := gh.Repo(ctx, v.token, p.Owner, p.Repo)
	if err != nil || !ok {
		return nil, err
	}
	return []githubapp.RepoAccess{r}, nil
}

// The access cache: what GitHub said each session or token may read, for
// a short time. It is bounded; when full, expired entries go, then all.
type accessCache struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[accessKey]accessEntry
}

// maxAccessEntries bounds the cache (an entry is a few hundred bytes per
// installation a person looked at).
const maxAccessEntries = 10000

type accessKey struct {
	viewer string // "session:<id>" or "token:<sha256>"
	scope  string // "installation:<id>", "repo:<id or name>", "user"
}

type accessEntry struct {
	at    time.Time
	login string                // scope "user": who the token belongs to
	repos map[string]Permission // by programKey
}

func newAccessCache(ttl time.Duration, max int) *accessCache {
	return &accessCache{ttl: ttl, max: max, entries: map[accessKey]accessEntry{}}
}

func (c *accessCache) get(k accessKey, now time.Time) (accessEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.Sub(e.at) >= c.ttl || now.Before(e.at) {
		return accessEntry{}, false
	}
	return e, true
}

func (c *accessCache) put(k accessKey, e accessEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, old := range c.entries {
			if e.at.Sub(old.at) >= c.ttl {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[k] = e
}

// forget drops what a session or token could read (signing out).
func (c *accessCache) forget(viewer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries {
		if k.viewer == viewer {
			delete(c.entries, k)
		}
	}
}

// permission is what the request's viewer may see of p.
func (d *Dashboard) permission(ctx context.Context, p bot.Program) (Permission, error) {
	if d.Public {
		return WriteAccess, nil
	}
	v := viewerFrom(ctx)
	if v == nil {
		return NoAccess, nil // no viewer: nothing (a dashboard without Guard)
	}
	return v.permission(ctx, p)
}

// readablePrograms are the programs the request's viewer may read.
func (d *Dashboard) readablePrograms(ctx context.Context) ([]bot.Program, error) {
	var all []bot.Program
	err := d.view(ctx, func(tx readTx) (err error) {
		all, err = tx.Programs(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []bot.Program
	for _, p := range all {
		perm, err := d.permission(ctx, p)
		if err != nil {
			return nil, err
		}
		if perm >= ReadAccess {
			out = append(out, p)
		}
	}
	return out, nil
}

// program finds owner/repo for the request's viewer, with what they may
// see of it. One they may not read is not found, in the same words as one
// that does not exist, which name the programs they can read.
func (d *Dashboard) program(ctx context.Context, owner, repo string) (bot.Program, Permission, error) {
	var p bot.Program
	err := d.view(ctx, func(tx readTx) (err error) {
		p, err = tx.ProgramByName(ctx, owner, repo)
		return err
	})
	perm := NoAccess
	if err == nil {
		perm, err = d.permission(ctx, p)
	}
	if err != nil && !errors.Is(err, bot.ErrNotFound) {
		return p, NoAccess, err
	}
	if perm >= ReadAccess {
		return p, perm, nil
	}
	readable, err := d.readablePrograms(ctx)
	if err != nil {
		return bot.Program{}, NoAccess, err
	}
	names := make([]string, len(readable))
	for i, p := range readable {
		names[i] = p.FullName()
	}
	if d.Public {
		msg := fmt.Sprintf("Stagehand has no program %s/%s. A program appears when the GitHub App is installed on its repository", owner, repo)
		if len(names) == 0 {
			return bot.Program{}, NoAccess, notFound("%s; no repository has it yet.", msg)
		}
		return bot.Program{}, NoAccess, notFound("%s; known programs: %s.", msg, strings.Join(names, ", "))
	}
	msg := fmt.Sprintf("Stagehand has no program %s/%s that you can read. You see the programs whose repository you can read on GitHub", owner, repo)
	if len(names) == 0 {
		return bot.Program{}, NoAccess, notFound("%s; you can read none yet.", msg)
	}
	return bot.Program{}, NoAccess, notFound("%s: %s.", msg, strings.Join(names, ", "))
}
