package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

var _ = handles("repository", (*Webhooks).repository)

// repository keeps a program's owner, name and default branch those of its
// GitHub repository, found by the repository's id: a renamed or transferred
// repository keeps its program, variables and history, and a deleted one's
// program is marked removed (a repository created again under its name
// gets a new program). A repository that is not a program is left alone.
func (h *Webhooks) repository(ctx context.Context, d Delivery, ev *github.RepositoryEvent) (outcome, error) {
	r := repositoryOf(ev.GetRepo())
	inst := ev.GetInstallation().GetID()
	ctx = bot.WithLogAttrs(ctx, slog.String(bot.LogRepo, r.Owner+"/"+r.Name), slog.Int64(bot.LogInstallationID, inst))
	action := ev.GetAction()
	switch {
	case action == "renamed", action == "transferred", action == "deleted":
	case action == "edited" && ev.GetChanges().GetDefaultBranch() != nil:
	default:
		return ignored("repository " + action + " changes no program"), nil
	}
	if r.ID == 0 || r.Owner == "" || r.Name == "" {
		return outcome{}, bot.PermanentError{Err: fmt.Errorf("repository %s of delivery %s: the payload names no repository id, owner or name", action, d.GUID)}
	}
	oldOwner, oldName := previousName(ev, r)
	var before, after bot.Program
	effects := func(tx bot.Tx) error {
		p, err := bot.ProgramOf(ctx, tx, r.ID, oldOwner, oldName)
		if errors.Is(err, bot.ErrNotFound) {
			before, after = bot.Program{}, bot.Program{}
			return nil
		}
		if err != nil {
			return err
		}
		before = p
		if action == "deleted" {
			after = p
			after.Removed = true
			return tx.SetProgramRemoved(ctx, p.ID, true)
		}
		if inst == 0 {
			inst = p.InstallationID
		}
		if p.GitHubID == 0 {
			// Recorded before Stagehand kept ids: the program takes the id
			// under the name it has, then follows the repository.
			if _, err := tx.EnsureProgram(ctx, inst, bot.Repository{ID: r.ID, Owner: p.Owner, Name: p.Repo}); err != nil {
				return err
			}
		}
		after, err = tx.EnsureProgram(ctx, inst, r)
		return err
	}
	return outcome{effects: effects, after: func(ctx context.Context) {
		if before.ID == 0 {
			h.Logger.InfoContext(ctx, "repository "+action+": not a program; nothing to update")
			return
		}
		h.Logger.InfoContext(ctx, "repository "+action, "program", before.ID,
			"from", before.FullName(), "to", after.FullName(),
			"default_branch", after.DefaultBranch, "removed", after.Removed)
	}}, nil
}

// previousName is the owner and name a repository had before the event:
// GitHub sends the new ones, and the old in changes.
func previousName(ev *github.RepositoryEvent, r bot.Repository) (owner, name string) {
	owner, name = r.Owner, r.Name
	if from := ev.GetChanges().GetRepo().GetName().GetFrom(); from != "" {
		name = from
	}
	if from := ev.GetChanges().GetOwner().GetOwnerInfo(); from != nil {
		if login := from.GetUser().GetLogin(); login != "" {
			owner = login
		}
		if login := from.GetOrg().GetLogin(); login != "" {
			owner = login
		}
	}
	return owner, name
}
