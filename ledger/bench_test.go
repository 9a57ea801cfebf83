package ledger

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
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

func BenchmarkAppendParallel(b *testing.B) {
	l := openTest(b, b.TempDir())
	start := time.Now()
	runParallel(b, 64, func() error {
		_, err := l.Append(context.Background(), testEntry(1))
		return err
	})
	reportRate(b, int64(b.N), start)
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

func ledgerOf(b *testing.B, n int64) *Ledger {
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
	l, err := Open(Options{Dir: fx.dir, ReadOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

func BenchmarkVerify(b *testing.B) {
	l := ledgerOf(b, 100_000)
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rep, err := l.Verify(context.Background(), nil)
		if err != nil || rep.Size != 100_000 {
			b.Fatal(rep, err)
		}
	}
	reportRate(b, int64(b.N)*100_000, start)
}

func BenchmarkProveInclusion(b *testing.B) {
	const n = 1_000_000
	l := ledgerOf(b, n)
	size := l.Size()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.ProveInclusion(rand.Int64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBadgerBaseline is raw Badger with SyncWrites: one transaction
// of one 300-byte value per entry, serially and from 64 goroutines. The
// ledger's append benchmarks are meant to be read as ratios of these.
func BenchmarkBadgerBaseline(b *testing.B) {
	open := func(b *testing.B) *badger.DB {
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(b.TempDir(), "db")).
			WithSyncWrites(true).WithCompression(options.None).WithLogger(nil).WithMetricsEnabled(false))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}
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
