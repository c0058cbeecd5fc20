package webhook

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

var _ = handles("installation", (*Webhooks).installation)

// installation keeps track of the App's installations and their
// repositories (each repository is a program).
func (h *Webhooks) installation(ctx context.Context, d Delivery, ev *github.InstallationEvent) (outcome, error) {
	in := ev.GetInstallation()
	ctx = bot.WithLogAttrs(ctx, slog.Int64(bot.LogInstallationID, in.GetID()))
	action := ev.GetAction()
	return outcome{effects: func(tx bot.Tx) error {
		switch action {
		case "deleted":
			return tx.DeleteInstallation(ctx, in.GetID())
		case "created", "suspend", "unsuspend", "new_permissions_accepted":
			err := tx.PutInstallation(ctx, bot.Installation{
				ID: in.GetID(), Account: in.GetAccount().GetLogin(),
				Suspended: action == "suspend" || (action != "unsuspend" && in.SuspendedAt != nil),
				UpdatedAt: h.Clock.Now(),
			})
			if err != nil || action != "created" {
				return err
			}
			return addRepos(ctx, tx, in.GetID(), ev.Repositories)
		}
		return nil
	}, note: "installation " + action, attrs: []slog.Attr{
		slog.String("account", in.GetAccount().GetLogin()), slog.Int("repositories", len(ev.Repositories)),
	}}, nil
}

var _ = handles("installation_repositories", (*Webhooks).installationRepositories)

// installationRepositories adds and removes programs as repositories are
// added to or removed from an installation.
func (h *Webhooks) installationRepositories(ctx context.Context, d Delivery, ev *github.InstallationRepositoriesEvent) (outcome, error) {
	inst := ev.GetInstallation().GetID()
	ctx = bot.WithLogAttrs(ctx, slog.Int64(bot.LogInstallationID, inst))
	return outcome{effects: func(tx bot.Tx) error {
		if err := addRepos(ctx, tx, inst, ev.RepositoriesAdded); err != nil {
			return err
		}
		for _, r := range ev.RepositoriesRemoved {
			owner, name := splitFullName(r)
			p, err := bot.ProgramOf(ctx, tx, r.GetID(), owner, name)
			if errors.Is(err, bot.ErrNotFound) {
				continue // never seen: nothing to remove
			}
			if err != nil {
				return err
			}
			if err := tx.SetProgramRemoved(ctx, p.ID, true); err != nil {
				return err
			}
		}
		return nil
	}, note: "installation repositories " + ev.GetAction(), attrs: []slog.Attr{
		slog.Int("added", len(ev.RepositoriesAdded)), slog.Int("removed", len(ev.RepositoriesRemoved)),
	}}, nil
}

// addRepos makes each repository a program, keyed by its GitHub id.
// Installation payloads name no default branch.
func addRepos(ctx context.Context, tx bot.RepositoryTx, inst int64, repos []*github.Repository) error {
	for _, r := range repos {
		owner, name := splitFullName(r)
		if _, err := tx.EnsureProgram(ctx, inst, bot.Repository{ID: r.GetID(), Owner: owner, Name: name}); err != nil {
			return err
		}
	}
	return nil
}

// splitFullName reads owner and name from a repository as installation
// payloads carry it (full_name and name, no owner object).
func splitFullName(r *github.Repository) (owner, name string) {
	owner, name, ok := strings.Cut(r.GetFullName(), "/")
	if !ok {
		return r.GetOwner().GetLogin(), r.GetName()
	}
	return owner, name
}
