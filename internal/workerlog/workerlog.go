// Package workerlog is the small protocol between a worker process and the
// node daemon that reads its stdout and stderr: before a worker runs a
// task of a new function (or starts hosting an actor) it writes a marker
// line naming it, and the daemon strips the marker and prefixes the
// worker's following lines with "(Name pid=… node=…)", as Ray does.
package workerlog

import (
	"bytes"
	"io"
)

// marker starts a name line; the escape byte keeps it out of ordinary
// output.
var marker = []byte("\x1braygo:name ")

// WriteName announces the name the following output belongs to.
func WriteName(w io.Writer, name string) {
	line := make([]byte, 0, len(marker)+len(name)+1)
	line = append(line, marker...)
	line = append(line, name...)
	line = append(line, '\n')
	_, _ = w.Write(line)
}

// ParseName returns the name in a marker line, and false for other lines.
func ParseName(line []byte) (string, bool) {
	if !bytes.HasPrefix(line, marker) {
		return "", false
	}
	return string(line[len(marker):]), true
}
