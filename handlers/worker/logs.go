package worker

import (
	"path/filepath"
	"strconv"

	"github.com/stagehand-dev/stagehand/bot"
)

// LogFiles says where step logs live: <data dir>/logs/<execution id>/<step>.log.
// The step worker writes them, retention removes them, and the web pages
// read them through this type (it is the one owner of the layout).
type LogFiles struct{ DataDir string }

// Root holds the step logs, a directory per execution.
func (l LogFiles) Root() string { return filepath.Join(l.DataDir, "logs") }

// Dir holds the step logs of an execution.
func (l LogFiles) Dir(executionID int64) string {
	return filepath.Join(l.Root(), strconv.FormatInt(executionID, 10))
}

// File is the log of one step of an execution.
func (l LogFiles) File(executionID int64, step bot.StepName) string {
	return filepath.Join(l.Dir(executionID), string(step)+".log")
}
