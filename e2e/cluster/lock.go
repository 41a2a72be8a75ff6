package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// fileLock is an exclusive flock(2) lock on a file. The kernel releases it
// when the process dies, so a crashed holder never blocks the next run.
type fileLock struct {
	f *os.File
}

// lockFile takes an exclusive lock on path, creating the file if needed. It
// waits until the lock is free or ctx is done, and says once on progress that
// it is waiting.
func lockFile(ctx context.Context, path string, progress io.Writer, what string) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	waiting := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &fileLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waiting {
			fmt.Fprintf(progress, "e2e/cluster: waiting for %s: another process holds %s\n", what, path)
			waiting = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for lock %s: %w", path, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// unlock releases the lock. Closing the file releases the flock.
func (l *fileLock) unlock() {
	l.f.Close()
}
