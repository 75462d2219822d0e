package coreworker

import "os"

// exitProcess ends a worker process (forced cancel). A variable so the
// package's own tests can observe it.
var exitProcess = os.Exit
