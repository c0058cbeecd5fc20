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
		if bot.DeploymentState(ref.Reported) == state || (st.Attempt == 0 && ref.GitHubID == 0) {
			// Reported already, or it never started (cancelled while it
			// waited for its deploy window, say): nothing to show.
			continue
		}
		if ref.GitHubID == 0 {
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

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
