//go:build !unix

package fsblob

// lockDir does nothing where flock is missing: one process per root is
// then the operator's responsibility.
func lockDir(string) (func() error, error) { return func() error { return nil }, nil }
