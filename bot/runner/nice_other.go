//go:build !linux

package runner

import "os/exec"

// startNiced starts cmd; outside Linux the step runs at the server's
// priority.
func startNiced(cmd *exec.Cmd, nice int) error { return cmd.Start() }
