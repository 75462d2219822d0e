//go:build !linux && !darwin

package localsock

// Elsewhere raygo makes no local sockets: the framed protocols need a
// peer-credential check (SO_PEERCRED, LOCAL_PEERCRED) and descriptor
// passing that raygo implements for Linux and darwin only.
const defaultMode = Off

// sunPathLen is the smallest sun_path among the platforms (darwin, the
// BSDs); unused while there are no local sockets here.
const sunPathLen = 104

func platformHas(Mode) bool { return false }
