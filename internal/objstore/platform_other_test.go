//go:build !linux && !darwin

package objstore

func ftruncate(int, int64) error { return errNoStore }
