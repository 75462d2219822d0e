// Package workerlog is the small protocol between a worker process and the
// node daemon that reads its stdout and stderr: before a worker runs a
// task of a new function (or starts hosting an actor) it writes a marker
// line naming it, and the daemon strips the marker and prefixes the
// worker's following lines with "(Name pid=…, node=…)" (Prefix), as Ray
// does with "(Name pid=…, ip=…)".
package workerlog

import (
	"bytes"
	"io"
	"strconv"
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

// MaxLineBytes bounds the text of a line sent to drivers (a node's log
// publisher cuts longer lines with CapLine; the log files keep them
// whole). The control store refuses longer ones.
const MaxLineBytes = 16 << 10

// CapLine returns b as a string of at most MaxLineBytes plus a note
// saying how much was cut.
func CapLine(b []byte) string {
	if len(b) <= MaxLineBytes {
		return string(b)
	}
	cut := MaxLineBytes
	for cut > MaxLineBytes-4 && cut > 0 && b[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		cut--
	}
	return string(b[:cut]) + " [raygo: " + strconv.Itoa(len(b)-cut) + " more bytes in the log file]"
}

// Prefix is what precedes a worker's output line wherever it is shown
// (a driver's terminal, the embedded cluster's echo): "(Name pid=123,
// node=1a2b3c4d5e6f) ", or without the name before the worker announced
// one. node is the node's short id (ids.ID.Short).
func Prefix(name string, pid int, node string) string {
	if name == "" {
		return "(pid=" + strconv.Itoa(pid) + ", node=" + node + ") "
	}
	return "(" + name + " pid=" + strconv.Itoa(pid) + ", node=" + node + ") "
}
