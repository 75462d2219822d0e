package cli

import "fmt"

// usageError marks a mistake in how raygo was invoked: an unknown command
// or flag, a missing or conflicting flag, or a flag value out of range.
// Execute exits with code 2 for it instead of 1.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf formats a usageError; %w wraps as in fmt.Errorf.
func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}
