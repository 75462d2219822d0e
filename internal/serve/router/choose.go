package router

// pickTwo samples the power-of-two-choices candidates among n available
// replicas, as Ray's PowerOfTwoChoicesRequestRouter.choose_replicas does:
// with one replica it is the only candidate (j is -1); with two, both in a
// random order, so that a tie goes to either with equal chance; with more,
// an ordered pair of distinct indexes drawn uniformly (i from [0,n), j from
// [0,n-1) shifted past i). The caller keeps i unless j is strictly
// lighter, so ties go to a uniformly random one of the pair. n must be
// at least 1.
func pickTwo(n int, rnd Rand) (i, j int) {
	switch n {
	case 1:
		return 0, -1
	case 2:
		if rnd.IntN(2) == 0 {
			return 0, 1
		}
		return 1, 0
	}
	i = rnd.IntN(n)
	j = rnd.IntN(n - 1)
	if j >= i {
		j++
	}
	return i, j
}
