//go:build !unix

package session

import "os"

// privateModes: on Windows, permission bits do not describe who may enter
// a directory (its ACL does), so only the checks that apply are made; the
// default root is in the user's own temporary directory.
const privateModes = false

// ownerUID is not known here.
func ownerUID(os.FileInfo) (int, bool) { return 0, false }
