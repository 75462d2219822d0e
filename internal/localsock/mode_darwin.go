package localsock

// darwin has no abstract sockets: socket files.
const defaultMode = Files

// sunPathLen is the size of sockaddr_un's sun_path.
const sunPathLen = 104

func platformHas(m Mode) bool { return m == Files }
