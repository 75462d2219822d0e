package localsock

// Linux has abstract sockets (the default) and socket files.
const defaultMode = Abstract

// sunPathLen is the size of sockaddr_un's sun_path.
const sunPathLen = 108

func platformHas(m Mode) bool { return m == Abstract || m == Files }
