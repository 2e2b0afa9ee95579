//go:build unix

package agent

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the child in a process group of its own: a terminal's ^C
// to the agent is not the process's, which the agent freezes itself.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
