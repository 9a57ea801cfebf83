//go:build !linux

package ledger

import "time"

// threadCPU is not measured here; benchmarks then report no CPU time.
func threadCPU() time.Duration { return 0 }
