package format

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// CheckInclusion checks that leaf is the entry at seq in the tree of the
// given size and root, using the audit path proof.
func CheckInclusion(proof []Hash, size int64, root Hash, seq int64, leaf Hash) error {
	return tlog.CheckRecord(proof, size, root, seq, leaf)
}

// CheckConsistency checks that the tree (from, fromRoot) is a prefix of the
// tree (to, toRoot).
func CheckConsistency(proof []Hash, from int64, fromRoot Hash, to int64, toRoot Hash) error {
	if from == to {
		if fromRoot != toRoot || len(proof) != 0 {
			return fmt.Errorf("format: trees of equal size %d differ", from)
		}
		return nil
	}
	if from == 0 {
		return nil
	}
	return tlog.CheckTree(proof, to, toRoot, from, fromRoot)
}
