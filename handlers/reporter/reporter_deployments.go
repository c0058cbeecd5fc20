package reporter

import (
	"context"
	"fmt"

	"github.com/stagehand-dev/stagehand/bot"
)

// reportDeployments keeps a GitHub Deployment per deploy step in step with
// the step: in_progress when it runs, success or failure when it ends.
func (r *Reporter) reportDeployments(ctx context.Context, s *snapshot) error {
	in, p := s.in, s.in.Program
	for _, st := range in.Steps {
		kind := bot.KindOf(st.Name)
		if !kind.Deploy {
			continue
		}
		env := kind.Environment
		state, ok := bot.DeploymentStateOf(st)
		if !ok {
			continue
		}
		key := bot.DeploymentKey(st.Name)
		ref := s.refs[key]
		if ref.GitHubID == 0 && bot.DeploymentState(ref.Reported) == bot.DeploymentCreating {
			adopted, err := r.adoptDeployment(ctx, s, env, ref)
			if err != nil {
				return err
			}
			ref = adopted
		}
		if bot.DeploymentState(ref.Reported) == state || (st.Attempt == 0 && ref.GitHubID == 0) {
			// Reported already, or it never started (cancelled while it
			// waited for its deploy window, say): nothing to show.
			continue
		}
		if ref.GitHubID == 0 {
			// The intent first: a create whose answer is lost (a
			// connection reset after GitHub made it) is adopted by the
			// next report instead of made twice.
			ref = bot.GitHubRef{ExecutionID: in.Execution.ID, Key: key, Reported: string(bot.DeploymentCreating)}
			if err := r.putRef(ctx, ref); err != nil {
				return err
			}
			id, err := r.GitHub.CreateDeployment(ctx, p.InstallationID, p.Owner, p.Repo, in.Execution.Commit, string(env),
				fmt.Sprintf("%s deploys %s", in.Execution, bot.ShortSHA(in.Execution.Commit)),
				map[string]any{"execution": in.Execution.Number, "pipeline": string(in.Execution.Pipeline), "artifact_digest": in.Execution.ArtifactDigest})
			if err != nil {
				return fmt.Errorf("creating the %s deployment: %w", env, err)
			}
			ref = bot.GitHubRef{ExecutionID: in.Execution.ID, Key: key, GitHubID: id}
			if err := r.putRef(ctx, ref); err != nil {
				return err
			}
		}
		if bot.DeploymentState(ref.Reported) == bot.DeploymentNotReported && state != bot.DeploymentInProgress {
			// The step ended before the deployment was reported: GitHub
			// still gets the whole story, in_progress first.
			if err := r.GitHub.CreateDeploymentStatus(ctx, p.InstallationID, p.Owner, p.Repo, ref.GitHubID, string(bot.DeploymentInProgress), "", in.DetailsURL, "deploying"); err != nil {
				return fmt.Errorf("setting the %s deployment to in_progress: %w", env, err)
			}
		}
		url := ""
		if s.cfg != nil {
			if ec := s.cfg.Environment(env); ec != nil {
				url = ec.URL
			}
		}
		if err := r.GitHub.CreateDeploymentStatus(ctx, p.InstallationID, p.Owner, p.Repo, ref.GitHubID, string(state), url, in.DetailsURL, truncate(st.Message, 140)); err != nil {
			return fmt.Errorf("setting the %s deployment to %s: %w", env, state, err)
		}
		ref.Reported = string(state)
		if err := r.putRef(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// adoptDeployment resolves a create whose answer was lost: a deployment of
// this execution to env on GitHub that no ref knows is the one created
// then; it is adopted as not reported yet (its statuses are unknown, and
// sending in_progress again does no harm). None: the create never reached
// GitHub, and ref comes back unchanged, to be created.
func (r *Reporter) adoptDeployment(ctx context.Context, s *snapshot, env bot.EnvironmentName, ref bot.GitHubRef) (bot.GitHubRef, error) {
	in, p := s.in, s.in.Program
	ids, err := r.GitHub.DeploymentIDs(ctx, p.InstallationID, p.Owner, p.Repo, in.Execution.Commit, string(env),
		string(in.Execution.Pipeline), in.Execution.Number)
	if err != nil {
		return ref, fmt.Errorf("looking for a %s deployment created without an answer: %w", env, err)
	}
	known := map[int64]bool{}
	for _, other := range s.refs {
		known[other.GitHubID] = true
	}
	for _, id := range ids {
		if !known[id] {
			ref.GitHubID, ref.Reported = id, string(bot.DeploymentNotReported)
			r.Logger.InfoContext(ctx, "adopted a deployment whose creation answer was lost", "deployment", id, "environment", string(env))
			return ref, r.putRef(ctx, ref)
		}
	}
	return ref, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
