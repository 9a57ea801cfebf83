package s3test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The VersityGW the tests run, built from source with the go command.
const (
	VersityGWModule  = "github.com/versity/versitygw/cmd/versitygw"
	VersityGWVersion = "v1.8.0"
)

// EnvVersityGW names an existing versitygw binary to use instead of building one.
const EnvVersityGW = "TONGBAN_VERSITYGW"

// Install returns the path of a versitygw binary: $TONGBAN_VERSITYGW if set,
// else VersityGWVersion built once into the user's cache directory
// (<cache>/tongban/bin), reused afterwards. A versitygw found on PATH is not
// used: its version is unknown.
//
// Concurrent calls, from several test binaries, are safe: each builds into
// its own directory and renames the result into place atomically.
func Install(ctx context.Context) (string, error) {
	if p := os.Getenv(EnvVersityGW); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", EnvVersityGW, err)
		}
		return p, nil
	}
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	final := filepath.Join(dir, "versitygw-"+VersityGWVersion)
	if fi, err := os.Stat(final); err == nil && fi.Mode().IsRegular() {
		return final, nil
	}

	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building versitygw: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".install-")
	if err != nil {
		return "", fmt.Errorf("building versitygw: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goCmd, "install", VersityGWModule+"@"+VersityGWVersion)
	cmd.Dir = tmp // outside any module or workspace
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s: %w\n%s", VersityGWModule, VersityGWVersion, err, tail(out))
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), final); err != nil {
		return "", fmt.Errorf("building versitygw: %w", err)
	}
	return final, nil
}

// binDir is where built binaries are kept, created if needed.
func binDir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "tongban-cache")
	}
	dir := filepath.Join(cache, "tongban", "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("building versitygw: %w", err)
	}
	return dir, nil
}

// tail returns the last lines of a command's output, for error messages.
func tail(out []byte) string {
	const max = 4 << 10
	s := strings.TrimSpace(string(out))
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return s
}
