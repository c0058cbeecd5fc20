package bot

// EventKind says what an Event records. The kinds are stored as their
// string values, so the strings are a contract with the stores' data.
type EventKind string

// The event kinds. The first group is written by the engine's commands and
// pushes; the second by the GitHub surface (clicks and their refusals).
const (
	EventTriggered        EventKind = "triggered"
	EventPromoted         EventKind = "promoted"
	EventApproved         EventKind = "approved"
	EventApprovedRollback EventKind = "approved-rollback"
	EventRejected         EventKind = "rejected"
	EventScheduled        EventKind = "scheduled"
	EventCancelled        EventKind = "cancelled"
	// EventPolicyOverride is a break-glass override (/stagehand deploy-now
	// --override "reason"); Detail is the reason. A deploy held by its
	// environment's deploy windows or freezes starts when such an event is
	// recorded at or after the moment it began to wait (Engine.windowHold).
	EventPolicyOverride EventKind = "policy-override"

	EventPromoteRequested EventKind = "promote-requested"
	EventPromoteDismissed EventKind = "promote-dismissed"
	EventRefused          EventKind = "refused"
)

// ConfigPath is where a repository keeps its Stagehand configuration
// (SPEC §3): the policy at the default branch's head, the commands at the
// pushed commit.
const ConfigPath = ".github/stagehand.yml"
