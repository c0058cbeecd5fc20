package githubapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-github/v62/github"

	"github.com/stagehand-dev/stagehand/bot"
)

// The App's webhook delivery log, read and acted on as the App itself (its
// JWT): GitHub's endpoints for it need no permission beyond being the App.

// hookPageSize is how many deliveries one GET /app/hook/deliveries asks
// for: GitHub's maximum.
const hookPageSize = 100

// HookDeliveries returns one page of the App's webhook delivery attempts,
// newest first, starting at cursor ("" for the newest), and the cursor of
// the next page ("" after the last).
func (a *App) HookDeliveries(ctx context.Context, cursor string) ([]bot.HookDelivery, string, error) {
	page, resp, err := a.app.Apps.ListHookDeliveries(ctx, &github.ListCursorOptions{PerPage: hookPageSize, Cursor: cursor})
	if err != nil {
		return nil, "", fmt.Errorf("list the App's webhook deliveries: %w", appError(err))
	}
	out := make([]bot.HookDelivery, 0, len(page))
	for _, d := range page {
		out = append(out, bot.HookDelivery{
			ID: d.GetID(), GUID: d.GetGUID(), Event: d.GetEvent(), Action: d.GetAction(),
			Redelivery: d.GetRedelivery(), DeliveredAt: d.GetDeliveredAt().Time,
			StatusCode: d.GetStatusCode(), Status: d.GetStatus(),
		})
	}
	return out, resp.Cursor, nil
}

// Redeliver asks GitHub to send delivery id again (it answers 202 and sends
// it soon after). An error GitHub will give again for this delivery (it is
// unknown or too old: a 4xx other than a rate limit) matches
// bot.ErrRedeliveryRefused.
func (a *App) Redeliver(ctx context.Context, id int64) error {
	_, _, err := a.app.Apps.RedeliverHookDelivery(ctx, id)
	if err == nil || errors.As(err, new(*github.AcceptedError)) {
		return nil
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		if code := er.Response.StatusCode; code >= 400 && code < 500 && code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
			return fmt.Errorf("ask GitHub to redeliver delivery %d: %w (%d): %w", id, bot.ErrRedeliveryRefused, code, err)
		}
	}
	return fmt.Errorf("ask GitHub to redeliver delivery %d: %w", id, appError(err))
}

// appError explains a failed request made as the App (JWT). Rate limits
// come as go-github's RateLimitError and AbuseRateLimitError, unchanged.
func appError(err error) error {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("GitHub refused the App's credentials (401): check the App id and private key: %w", err)
	}
	return err
}
