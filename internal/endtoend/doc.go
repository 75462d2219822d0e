// Package endtoend holds tests of the cluster's boundaries with real
// processes: a job's objects freed when its driver is killed, an
// unauthenticated user of another uid unable to make a daemon or a driver
// spend memory, and a session root that another user controls refused.
// The test binary plays every role (head, driver, attacker, worker),
// chosen by environment variables; the package has no code of its own.
package endtoend
