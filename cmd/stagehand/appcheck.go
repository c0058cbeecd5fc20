package main

import (
	"context"
	"log/slog"

	"github.com/stagehand-dev/stagehand/bot"
	"github.com/stagehand-dev/stagehand/bot/githubapp"
)

// warnAppShortfalls asks GitHub for the App (GET /app) and warns, one line
// each, of a permission or event it lacks of what Stagehand needs, naming
// the setting and the page where it is changed.
func warnAppShortfalls(ctx context.Context, app *githubapp.App, webURL string, logger *slog.Logger) {
	settings, err := app.Settings(ctx)
	if err != nil {
		if ctx.Err() == nil {
			logger.Warn("could not check the App's permissions and events; run stagehand doctor to check them", bot.LogError, err)
		}
		return
	}
	missing := settings.Missing()
	for _, m := range missing {
		logger.Warn("the GitHub App lacks the "+m.String()+": Stagehand needs it; add it on the App's settings page, then accept the new permissions on each installation",
			"settings", settings.SettingsURL(webURL))
	}
	if len(missing) == 0 {
		logger.Info("the GitHub App has every permission and event Stagehand needs", "app", settings.Slug)
	}
}
