//go:build !unix

package mcptest

import "os/exec"

// setProcessGroup leaves cmd as it is: without process groups a cancelled
// context kills node only (exec's default), and the stdio MCP servers it
// started end when their stdin closes.
func setProcessGroup(cmd *exec.Cmd) {}

// killGroup does nothing where there are no process groups.
func killGroup(cmd *exec.Cmd) error { return nil }
