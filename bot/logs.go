package bot

// Log sizes: a step's whole log is kept up to MaxLogBytes on disk; the
// last LogTailBytes are kept with the step for check runs and pages.
const (
	MaxLogBytes  = 8 << 20
	LogTailBytes = 4 << 10
)
