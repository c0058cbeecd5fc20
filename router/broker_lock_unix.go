//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package router

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// lockStore takes an exclusive lock on the embedded broker's store, so a
// second process on the same data directory fails at start instead of
// corrupting it. Closing the returned file releases the lock.
func lockStore(dir string) (io.Closer, error) {
	path := filepath.Join(dir, "stagehand.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the broker lock file: %w: check that --data-dir is writable", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("the broker store in %s is in use by another process (another stagehand with the same --data-dir?): stop it or use another --data-dir; replicas share work through an external NATS server (--nats-url): %w", dir, err)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}
