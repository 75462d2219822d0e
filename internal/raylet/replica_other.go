//go:build !unix

package raylet

// killGroupAfterReap does nothing here: there are no process groups to
// signal, and the reaped leader's pid may be another process's by now
// (a node daemon does not run on these platforms, see Supported).
func killGroupAfterReap(int) {}
