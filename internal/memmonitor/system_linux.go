package memmonitor

func system() (Usage, error) { return Read("/") }

func process(pid int) (ProcMem, error) { return ReadProc("/", pid) }

func nodeLimit() (Limit, error) { return ReadLimit("/") }
