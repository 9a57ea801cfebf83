package ledger

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time used by the calling OS thread, so that a
// benchmark on a busy machine can report its own work beside wall time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
