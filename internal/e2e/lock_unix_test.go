//go:build unix

package e2e

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path, the lock the scripts in
// scripts/ take with flock(1) around their npm installs.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
