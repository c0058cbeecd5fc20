//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package router

import "io"

// lockStore does nothing here: run one process per data directory.
func lockStore(string) (io.Closer, error) { return nopCloser{}, nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
