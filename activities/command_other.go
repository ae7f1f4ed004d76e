//go:build !unix

package activities

import "os/exec"

// setProcessGroup is a no-op where process groups are not available: cancellation
// kills the command process only (exec.CommandContext's default).
func setProcessGroup(cmd *exec.Cmd) {}
