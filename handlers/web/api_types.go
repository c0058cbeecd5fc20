package web

import (
	"time"

	"github.com/stagehand-dev/stagehand/bot"
)

// The JSON API's bodies (see api.go for its conventions).

// APIError is the body of every API error.
type APIError struct {
	Error string `json:"error"`
}

// APIProgram is a program (one repository).
type APIProgram struct {
	Owner    string `json:"owner"`
	Repo     string `json:"repo"`
	FullName string `json:"full_name"`
	Removed  bool   `json:"removed"`
	HTMLPath string `json:"html_path"`
	APIPath  string `json:"api_path"`
}

// APIPrograms is GET /api/v1/programs.
type APIPrograms struct {
	Programs []APIProgram `json:"programs"`
}

// APIExecution is an execution without its steps.
type APIExecution struct {
	Number         int        `json:"number"`
	Pipeline       string     `json:"pipeline"`
	State          string     `json:"state"`
	Message        string     `json:"message,omitempty"`
	Commit         string     `json:"commit"`
	Branch         string     `json:"branch,omitempty"`
	Cause          string     `json:"cause,omitempty"`
	TriggeredBy    string     `json:"triggered_by,omitempty"`
	SourceNumber   int        `json:"source_number,omitempty"` // prod-only: the stage-only execution it deploys
	ArtifactDigest string     `json:"artifact_digest,omitempty"`
	ScheduledAt    *time.Time `json:"scheduled_at,omitempty"`
	Rollback       string     `json:"rollback,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	HTMLPath       string     `json:"html_path"`
}

// APIPipeline is a configured pipeline with its last executions.
type APIPipeline struct {
	Kind           string         `json:"kind"`
	Branch         string         `json:"branch,omitempty"`
	Trigger        string         `json:"trigger,omitempty"` // empty for prod-only: it starts by promotion
	Approval       bool           `json:"approval"`
	Scheduled      bool           `json:"scheduled"`
	LastExecutions []APIExecution `json:"last_executions"` // newest first, at most 5
}

// APIDeployment is what runs on an environment.
type APIDeployment struct {
	Commit          string    `json:"commit"`
	Pipeline        string    `json:"pipeline,omitempty"`
	ExecutionNumber int       `json:"execution_number,omitempty"`
	ArtifactDigest  string    `json:"artifact_digest,omitempty"`
	Since           time.Time `json:"since"`
	HTMLPath        string    `json:"html_path,omitempty"`
}

// APIVariable is an environment variable; Source is "set" (with
// /stagehand env set) or "config" (.github/stagehand.yml).
type APIVariable struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// APISecret is a declared secret: its name and "set" or "missing"; the API
// never carries a secret's value.
type APISecret struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

// APIEnvironment is stage or production.
type APIEnvironment struct {
	Name       string         `json:"name"`
	Deployment *APIDeployment `json:"deployment"` // null: nothing deployed yet
	// HeldBy are the running or waiting executions that hold the
	// environment (rule E); QueuedNext the queued ones that will.
	HeldBy         []APIExecution `json:"held_by"`
	QueuedNext     []APIExecution `json:"queued_next"`
	Variables      []APIVariable  `json:"variables"`
	VariablesError string         `json:"variables_error,omitempty"`
	// VariablesHidden: only people who can write to the repository see
	// its variables; variables is empty for the others.
	VariablesHidden bool `json:"variables_hidden,omitempty"`
	// Secrets are the declared secrets, by name (shown with the
	// variables).
	Secrets      []APISecret `json:"secrets,omitempty"`
	SecretsError string      `json:"secrets_error,omitempty"`
	// Calendar is the environment's deploy windows and freezes (policy),
	// absent when it declares none.
	Calendar      *APICalendar `json:"calendar,omitempty"`
	CalendarError string       `json:"calendar_error,omitempty"`
	// WaitingApprovals are the holders waiting for approval, with where
	// their quorum stands.
	WaitingApprovals []APIWaitingApproval `json:"waiting_approvals,omitempty"`
}

// APICalendar is an environment's deploy calendar as of the request.
type APICalendar struct {
	Windows []string    `json:"windows"` // "mon–thu 09:00–16:00 Europe/Berlin"
	Freezes []APIFreeze `json:"freezes"` // those not over yet
	Open    bool        `json:"open"`
	// State is "open now", or "closed: <why>; opens Mon 09:00
	// Europe/Berlin (in 14 h)".
	State    string     `json:"state"`
	NextOpen *time.Time `json:"next_open,omitempty"` // when closed: when deploys may start again
}

// APIFreeze is a freeze; Active: it is in effect now.
type APIFreeze struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason"`
	Active bool      `json:"active"`
}

// APIProgramDetail is GET /api/v1/programs/{owner}/{repo}.
type APIProgramDetail struct {
	Program      APIProgram       `json:"program"`
	Pipelines    []APIPipeline    `json:"pipelines"`
	Environments []APIEnvironment `json:"environments"`
	Queue        []APIExecution   `json:"queue"` // running and waiting executions, then queued ones, each oldest first: the order they run
}

// APIExecutions is GET /api/v1/programs/{owner}/{repo}/executions.
type APIExecutions struct {
	Executions []APIExecution `json:"executions"`
}

// APIStep is one step of an execution.
type APIStep struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Message    string     `json:"message,omitempty"`
	Attempt    int        `json:"attempt"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	DurationMS int64      `json:"duration_ms"` // so far, while it runs
	LogTail    string     `json:"log_tail,omitempty"`
	LogBytes   int64      `json:"log_bytes,omitempty"`
	LogPath    string     `json:"log_path,omitempty"` // the whole log; empty when the step wrote none
}

// APIEvent is something a person or Stagehand did to an execution.
type APIEvent struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// APIArtifactSet is an artifact set with its total size.
type APIArtifactSet struct {
	Digest string             `json:"digest"`
	Size   int64              `json:"size"`
	Files  []bot.ArtifactFile `json:"files"`
}

// APIExecutionDetail is GET /api/v1/programs/{owner}/{repo}/executions/{number}.
type APIExecutionDetail struct {
	APIExecution
	Program       string          `json:"program"`
	Steps         []APIStep       `json:"steps"`
	Events        []APIEvent      `json:"events"`
	Source        *APIExecution   `json:"source,omitempty"` // prod-only
	ArtifactSet   *APIArtifactSet `json:"artifact_set,omitempty"`
	ArtifactError string          `json:"artifact_error,omitempty"`
	// Notes say what the push of this commit did to other pipelines
	// (rule A: why they did not start).
	Notes []string `json:"notes,omitempty"`
	// Approval is where its waiting approval stands (absent when it does
	// not wait for one).
	Approval *APIQuorum `json:"approval,omitempty"`
	// Notifications are the messages Stagehand sent, or tried to send,
	// about it, oldest first: a failed one is state "gave-up" with the
	// last error.
	Notifications []APINotification `json:"notifications"`
}

// APINotification is one notification of an execution to one target: the
// target's name and type, never its URL or signing key (nor their secrets'
// names).
type APINotification struct {
	Target     string     `json:"target"`
	TargetType string     `json:"target_type"`
	Event      string     `json:"event"`
	State      string     `json:"state"` // pending, sent, gave-up
	Attempts   int        `json:"attempts"`
	LastError  string     `json:"last_error,omitempty"`
	Delivery   string     `json:"delivery"` // X-Stagehand-Delivery
	CreatedAt  time.Time  `json:"created_at"`
	NextAt     *time.Time `json:"next_attempt_at,omitempty"` // pending: not before
}
