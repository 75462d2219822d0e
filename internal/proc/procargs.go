package proc

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// parseProcargs2 reads darwin's sysctl kern.procargs2 (here so that it is
// tested everywhere): argc as a little-endian int32, the executable's
// path, NUL padding, then argc NUL-terminated arguments; the environment
// follows them.
func parseProcargs2(b []byte) ([]string, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("proc: kern.procargs2 of %d bytes", len(b))
	}
	argc := int(binary.LittleEndian.Uint32(b))
	b = b[4:]
	i := bytes.IndexByte(b, 0) // end of the executable's path
	if i < 0 {
		return nil, fmt.Errorf("proc: kern.procargs2 without arguments")
	}
	b = b[i:]
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	args := make([]string, 0, argc)
	for len(args) < argc && len(b) > 0 {
		j := bytes.IndexByte(b, 0)
		if j < 0 {
			j = len(b)
		}
		args = append(args, string(b[:j]))
		b = b[min(j+1, len(b)):]
	}
	return args, nil
}
