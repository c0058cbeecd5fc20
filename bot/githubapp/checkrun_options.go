package githubapp

import (
	"time"

	"github.com/google/go-github/v62/github"
)

// CreateOptions are go-github's options to create the check run v shows.
func CreateOptions(v CheckRunView) github.CreateCheckRunOptions {
	o := github.CreateCheckRunOptions{
		Name: v.Name, HeadSHA: v.HeadSHA, DetailsURL: github.String(v.DetailsURL), ExternalID: github.String(v.ExternalID),
		Status: github.String(v.Status), Output: output(v), Actions: v.Actions,
	}
	if v.Status == StatusCompleted {
		o.Conclusion = github.String(v.Conclusion)
		o.CompletedAt = &github.Timestamp{Time: time.Now()}
	}
	return o
}

// UpdateOptions are go-github's options to make an existing check run show
// v; buttons shown before and not in v are removed.
func UpdateOptions(v CheckRunView) github.UpdateCheckRunOptions {
	o := github.UpdateCheckRunOptions{
		Name: v.Name, DetailsURL: github.String(v.DetailsURL), ExternalID: github.String(v.ExternalID),
		Status: github.String(v.Status), Output: output(v), Actions: v.Actions,
	}
	if o.Actions == nil {
		o.Actions = []*github.CheckRunAction{} // removes buttons shown before
	}
	if v.Status == StatusCompleted {
		o.Conclusion = github.String(v.Conclusion)
		o.CompletedAt = &github.Timestamp{Time: time.Now()}
	}
	return o
}

func output(v CheckRunView) *github.CheckRunOutput {
	o := &github.CheckRunOutput{Title: github.String(v.Title), Summary: github.String(v.Summary), Annotations: v.Annotations}
	if v.Text != "" {
		o.Text = github.String(v.Text)
	}
	return o
}
