package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// HeadReader resolves a branch to the commit it points to.
type HeadReader interface {
	HeadCommit(ctx context.Context, prog bot.Program, branch string) (string, error)
}

// Policies reads programs' policies (SPEC §3): .github/stagehand.yml at the
// head of the default branch, resolved at every call (so a decision never
// uses a policy the default branch has moved away from), parsed once per
// commit. It implements bot.PolicyReader.
type Policies struct {
	Heads HeadReader
	Files FileFetcher
	Parse bot.ConfigParser

	mu    sync.Mutex
	cache map[string]bot.Policy // by "owner/repo@commit"
	// Branch heads read lately and being read, shared by deliveries
	// received before the read started (heads.go).
	heads   map[string]headRead  // by headKey
	reading map[string]*headCall // by headKey
}

// maxCachedPolicies bounds the cache; it is emptied when full.
const maxCachedPolicies = 512

// Policy reads prog's policy now.
func (p *Policies) Policy(ctx context.Context, prog bot.Program) (bot.Policy, error) {
	return p.PolicySince(ctx, prog, time.Time{})
}

// PolicySince reads prog's policy at the head of its default branch as a
// read started after since shows it (a delivery's received time: see
// headSince); a zero since means now.
func (p *Policies) PolicySince(ctx context.Context, prog bot.Program, since time.Time) (bot.Policy, error) {
	if prog.DefaultBranch == "" {
		return bot.Policy{}, fmt.Errorf("the default branch of %s is not known yet (Stagehand learns it from the repository's next webhook); refusing rather than guessing its policy", prog.FullName())
	}
	head, err := p.headSince(ctx, prog, prog.DefaultBranch, since)
	if err != nil {
		return bot.Policy{}, fmt.Errorf("reading the head of %s's default branch %s: %w", prog.FullName(), prog.DefaultBranch, err)
	}
	return p.At(ctx, prog, prog.DefaultBranch, head)
}

// At reads the policy at a known head of the default branch (a push to the
// default branch names its new head). A file that does not parse is a
// *bot.Refusal (bot.InvalidPolicyError); a missing file is a Policy with
// a nil Config.
func (p *Policies) At(ctx context.Context, prog bot.Program, branch, commit string) (bot.Policy, error) {
	key := prog.FullName() + "@" + commit
	p.mu.Lock()
	cached, ok := p.cache[key]
	p.mu.Unlock()
	if ok {
		return cached, nil
	}
	pol := bot.Policy{Branch: branch, Commit: commit}
	data, err := p.Files.FetchFile(ctx, prog.InstallationID, prog.Owner, prog.Repo, bot.ConfigPath, commit)
	switch {
	case errors.Is(err, bot.ErrNotFound):
		// No file on the default branch: no pipelines.
	case err != nil:
		return bot.Policy{}, fmt.Errorf("reading %s of %s at %s: %w", bot.ConfigPath, prog.FullName(), pol.Describe(), err)
	default:
		cfg, perr := p.Parse.Config(data)
		if perr != nil {
			return pol, bot.InvalidPolicyError(pol, perr)
		}
		pol.Raw, pol.Config = data, cfg
	}
	p.mu.Lock()
	if p.cache == nil || len(p.cache) >= maxCachedPolicies {
		p.cache = map[string]bot.Policy{}
	}
	p.cache[key] = pol
	p.mu.Unlock()
	return pol, nil
}

// Forget empties the cache, so the next read of every program's policy
// goes to GitHub again.
func (p *Policies) Forget() {
	p.mu.Lock()
	p.cache = nil
	p.mu.Unlock()
}
