//go:build !linux

package activities

import "os/exec"

// SupervisorMain does nothing here: supervised command activities need Linux (a child
// subreaper and parent-death signals). A command activity is started directly, and its
// process group is killed on timeout, cancel and shutdown.
func SupervisorMain() {}

type supervision struct{}

// superviseCommand leaves cmd as it is.
func superviseCommand(*exec.Cmd) (*supervision, error) { return nil, nil }

func (*supervision) started()          {}
func (*supervision) close()            {}
func (*supervision) startError() error { return nil }
