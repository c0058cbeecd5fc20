package bot

import "time"

// Session is a person signed in to the dashboard with GitHub. The browser's
// cookie holds a random secret; the store keeps only its SHA-256 (ID), so a
// copy of the database signs nobody in.
type Session struct {
	ID     string // hex SHA-256 of the cookie's secret
	UserID int64  // the GitHub user's id
	Login  string
	// Tokens are the user's GitHub tokens (access and refresh), sealed by
	// the dashboard with its session key: the store never holds them in
	// clear.
	Tokens    []byte
	CreatedAt time.Time
	// ExpiresAt ends the session whatever happens on GitHub.
	ExpiresAt time.Time
}
