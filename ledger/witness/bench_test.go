package witness_test

import (
	"testing"

	"tongban/ledger"
	"tongban/ledger/witness"
)

// BenchmarkCosignGrowth cosigns a log growing by one entry per request:
// each request verifies the log's signature and a consistency proof and
// durably replaces the state. Compare with BenchmarkCosignSameSize, which
// does the same checks but has nothing to write.
func BenchmarkCosignGrowth(b *testing.B) {
	benchCosign(b, true)
}

func BenchmarkCosignSameSize(b *testing.B) {
	benchCosign(b, false)
}

func benchCosign(b *testing.B, grow bool) {
	const n = 256
	a := newLog(b, "tongban.test/a", "", "a")
	a.grow(b, n)
	proofs := make([][]ledger.Hash, n+1)
	for s := int64(2); s <= n; s++ {
		proofs[s] = a.proof(b, s-1, s)
	}
	var w *witness.Witness
	reset := func() {
		if w != nil {
			w.Close()
		}
		var err error
		if w, err = witness.Open(witness.Options{Dir: b.TempDir(), Name: "bench", Logs: []string{a.l.VerifierKey()}}); err != nil {
			b.Fatal(err)
		}
		if _, err := w.AddCheckpoint(0, nil, a.cps[1]); err != nil {
			b.Fatal(err)
		}
	}
	reset()
	defer func() { w.Close() }()
	size := int64(1)
	b.ResetTimer()
	for range b.N {
		if !grow {
			if _, err := w.AddCheckpoint(1, nil, a.cps[1]); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if size == n {
			b.StopTimer()
			reset()
			size = 1
			b.StartTimer()
		}
		size++
		if _, err := w.AddCheckpoint(size-1, proofs[size], a.cps[size]); err != nil {
			b.Fatal(err)
		}
	}
}
