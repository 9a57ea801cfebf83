package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"golang.org/x/mod/sumdb/tlog"
)

// Benchmarks report entries/s so they can be read as ratios of
// BenchmarkBadgerBaseline, measured in the same run on the same disk.
//
//	go test ./ledger -run XXX -bench . -benchtime 5s

func reportRate(b *testing.B, entries int64, start time.Time) {
	b.ReportMetric(float64(entries)/time.Since(start).Seconds(), "entries/s")
}

func BenchmarkAppendSerial(b *testing.B) {
	l := openTest(b, b.TempDir())
	e := testEntry(1)
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		if _, err := l.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, int64(b.N), start)
}

// BenchmarkAppendParallel measures durable appends from 64 and 256
// goroutines, each beside its floor in the same run: raw Badger, opened
// with the ledger's options, where one goroutine commits synced
// transactions back to back, each holding the keys and values the ledger
// writes for a batch of the size the ledger just achieved (entries/commit
// of the ledger run, rounded): per entry its canonical bytes under e<seq>
// and an empty packet-index key, per batch every tree-hash chunk the
// batch's hashes fall in (2 KiB each, the last one partial) and the size
// key. Read ledger/badger-floor entries/s as the ratio.
func BenchmarkAppendParallel(b *testing.B) {
	for _, g := range []int{64, 256} {
		var batch float64
		b.Run(fmt.Sprintf("appenders=%d/ledger", g), func(b *testing.B) {
			l := openTest(b, b.TempDir())
			commits := l.commits.Load()
			start := time.Now()
			runParallel(b, g, func() error {
				_, err := l.Append(context.Background(), testEntry(1))
				return err
			})
			reportRate(b, int64(b.N), start)
			batch = float64(b.N) / float64(max(l.commits.Load()-commits, 1))
			b.ReportMetric(batch, "entries/commit")
		})
		b.Run(fmt.Sprintf("appenders=%d/badger-floor", g), func(b *testing.B) {
			k := max(int(math.Round(batch)), 1)
			db := openRaw(b)
			e := testEntry(1)
			e.Seq = 1 << 40 // as long as any seq the ledger writes here
			raw, err := e.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			chunk := make([]byte, chunkHashes*HashSize)
			var size int64
			b.ResetTimer()
			start := time.Now()
			for size < int64(b.N) {
				n := min(int64(k), int64(b.N)-size)
				txn := db.NewTransaction(true)
				first := tlog.StoredHashCount(size) / chunkHashes
				for range n {
					if err := txn.Set(entryKey(size), raw); err != nil {
						b.Fatal(err)
					}
					if err := txn.Set(packetKey(e.Packet, size), nil); err != nil {
						b.Fatal(err)
					}
					size++
				}
				end := tlog.StoredHashCount(size)
				for c := first; c <= end/chunkHashes; c++ {
					v := chunk
					if c == end/chunkHashes {
						v = chunk[:end%chunkHashes*HashSize]
					}
					if err := txn.Set(chunkKey(c), v); err != nil {
						b.Fatal(err)
					}
				}
				if err := txn.Set(keySize, binary.BigEndian.AppendUint64(nil, uint64(size))); err != nil {
					b.Fatal(err)
				}
				if err := txn.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b, int64(b.N), start)
			b.ReportMetric(float64(k), "entries/commit")
		})
	}
}

// openRaw opens a Badger database with the ledger's options.
func openRaw(b *testing.B) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions(filepath.Join(b.TempDir(), "db")).
		WithSyncWrites(true).WithCompression(options.None).WithLogger(nil).
		WithNumCompactors(2).WithMetricsEnabled(false).WithDetectConflicts(false))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// runParallel runs b.N calls of f spread over g goroutines.
func runParallel(b *testing.B, g int, f func() error) {
	b.Helper()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ResetTimer()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := f(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// fixture returns a closed ledger directory of n entries, built once per
// process and shared by the benchmarks that only read.
var fixtures sync.Map // n -> *fixture

type fixture struct {
	once sync.Once
	dir  string
	err  error
}

func ledgerOf(b *testing.B, n int64, readOnly bool) *Ledger {
	b.Helper()
	v, _ := fixtures.LoadOrStore(n, &fixture{})
	fx := v.(*fixture)
	fx.once.Do(func() {
		fx.dir, fx.err = os.MkdirTemp("", "tongban-bench-")
		if fx.err != nil {
			return
		}
		var l *Ledger
		if l, fx.err = Open(Options{Dir: fx.dir, MaxBatch: 4096}); fx.err != nil {
			return
		}
		var left atomic.Int64
		left.Store(n)
		var wg sync.WaitGroup
		for w := range 256 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; left.Add(-1) >= 0; i += 256 {
					if _, err := l.Append(context.Background(), testEntry(i)); err != nil {
						fx.err = err
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := l.Close(); fx.err == nil {
			fx.err = err
		}
	})
	if fx.err != nil {
		b.Fatal(fx.err)
	}
	// Read-only as the offline check opens it, or read-write as a serving
	// gateway does (which reads ahead for proofs).
	l, err := Open(Options{Dir: fx.dir, ReadOnly: readOnly})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// BenchmarkVerify checks a ledger of 100k entries beside two floors in the
// same run, each one read-only Badger transaction over every entry and
// every tree-hash chunk (all Verify must read):
//
//   - badger-iterate: the floor, an application reading the
//     database: default iterator options, each value copied out anew;
//   - badger-scan: the fastest raw read, with the options Verify uses (no
//     value prefetching: the values sit beside their keys) and every value
//     copied into one reused buffer. Verify hashes every byte it reads and
//     rebuilds the tree, so on two cores it cannot come near this one.
//
// "paired" runs Verify and badger-iterate alternately, so that both see
// the same machine (on a shared one, runs minutes apart differ by a
// third), and reports the ratio of their rates.
func BenchmarkVerify(b *testing.B) {
	const n = 100_000
	l := ledgerOf(b, n, true)
	verify := func(b *testing.B) {
		rep, err := l.Verify(context.Background(), nil)
		if err != nil || rep.Size != n {
			b.Fatal(rep, err)
		}
	}
	read := func(b *testing.B, opts badger.IteratorOptions, reuse bool) {
		var entries int64
		var buf []byte
		err := l.db.View(func(txn *badger.Txn) error {
			for _, prefix := range []byte{'e', 'h'} {
				opts.Prefix = []byte{prefix}
				it := txn.NewIterator(opts)
				for it.Rewind(); it.Valid(); it.Next() {
					if !reuse {
						buf = nil
					}
					var err error
					if buf, err = it.Item().ValueCopy(buf[:0]); err != nil {
						it.Close()
						return err
					}
					if prefix == 'e' {
						entries++
					}
				}
				it.Close()
			}
			return nil
		})
		if err != nil || entries != n {
			b.Fatal(entries, err)
		}
	}
	iterate := func(b *testing.B) { read(b, badger.DefaultIteratorOptions, false) }
	rate := func(name string, f func(*testing.B)) {
		b.Run(name, func(b *testing.B) {
			start := time.Now()
			for b.Loop() {
				f(b)
			}
			reportRate(b, int64(b.N)*n, start)
		})
	}
	rate("ledger", verify)
	rate("badger-iterate", iterate)
	rate("badger-scan", func(b *testing.B) { read(b, badger.IteratorOptions{}, true) })
	b.Run("paired", func(b *testing.B) {
		var inVerify, inIterate time.Duration
		timed := func(f func(*testing.B), total *time.Duration) {
			start := time.Now()
			f(b)
			*total += time.Since(start)
		}
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 { // each goes first every other time
				timed(verify, &inVerify)
				timed(iterate, &inIterate)
			} else {
				timed(iterate, &inIterate)
				timed(verify, &inVerify)
			}
		}
		b.ReportMetric(float64(b.N)*n/inVerify.Seconds(), "verify-entries/s")
		b.ReportMetric(float64(b.N)*n/inIterate.Seconds(), "iterate-entries/s")
		b.ReportMetric(inIterate.Seconds()/inVerify.Seconds(), "verify/iterate")
	})
}

// BenchmarkProveInclusion proves random entries in ledgers of 100k and 1M
// entries; the two sizes give the growth with the tree's height, from
// which larger logs are projected.
func BenchmarkProveInclusion(b *testing.B) {
	for _, n := range []int64{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("size=%d", n), func(b *testing.B) {
			l := ledgerOf(b, n, false)
			size := l.Size()
			<-l.warmed // the steady state of a serving gateway
			// Proofs run on this goroutine alone: its thread's CPU time is
			// their cost, whatever else the machine is doing.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu := threadCPU()
			for b.Loop() {
				if _, err := l.ProveInclusion(rand.Int64N(size), size); err != nil {
					b.Fatal(err)
				}
			}
			if cpu := threadCPU() - cpu; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkBadgerBaseline is raw Badger with SyncWrites: one transaction
// of one 300-byte value per entry, serially and from 64 goroutines. The
// ledger's append benchmarks are meant to be read as ratios of these.
func BenchmarkBadgerBaseline(b *testing.B) {
	open := openRaw
	e := testEntry(1)
	raw, _ := e.Marshal()
	var seq atomic.Int64
	put := func(db *badger.DB) error {
		return db.Update(func(txn *badger.Txn) error {
			return txn.Set(binary.BigEndian.AppendUint64([]byte{'e'}, uint64(seq.Add(1))), raw)
		})
	}
	b.Run("serial", func(b *testing.B) {
		db := open(b)
		start := time.Now()
		for b.Loop() {
			if err := put(db); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b, int64(b.N), start)
	})
	b.Run("parallel", func(b *testing.B) {
		db := open(b)
		start := time.Now()
		runParallel(b, 64, func() error { return put(db) })
		reportRate(b, int64(b.N), start)
	})
}

// cleanupFixtures removes the shared benchmark ledgers; TestMain calls it.
func cleanupFixtures() {
	fixtures.Range(func(_, v any) bool {
		if fx := v.(*fixture); fx.dir != "" {
			os.RemoveAll(fx.dir)
		}
		return true
	})
}
