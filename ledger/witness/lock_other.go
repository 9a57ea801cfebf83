//go:build !unix

package witness

import (
	"os"
	"path/filepath"
)

// lockDir is only advisory here: without flock, a lock file that exists is
// taken to be held (remove it by hand after a crash).
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, ErrLocked
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	f.Close()
	return os.Remove(f.Name())
}
