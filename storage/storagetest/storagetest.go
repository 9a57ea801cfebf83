// Package storagetest is the conformance suite that every storage.Store
// driver passes, in the manner of sumdb's storage.TestStorage. A driver's
// test calls Run with a function that makes a fresh, empty store and the
// means to reach behind it.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"tongban/storage"
)

// Harness is one fresh, empty store under test.
type Harness struct {
	Store storage.Store
	// Corrupt alters the stored bytes of the object named sum behind the
	// store's back, as bit rot or tampering would: for instance by flipping
	// one byte of its file on disk.
	Corrupt func(t *testing.T, sum string)
	// Leftovers lists the driver's internal remains (temporary files,
	// incomplete uploads, unnamed data), so the suite can check that failed
	// and duplicate Puts leave nothing behind. Optional.
	Leftovers func(t *testing.T) []string
}

// Sizes used by the suite. Large is over a multipart part when drivers
// under test use their smallest part size (5 MiB).
const (
	MiB   = 1 << 20
	Large = 12 * MiB
)

// Run runs the suite; every subtest gets its own Harness.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"Duplicate", testDuplicate},
		{"SizeLimit", testSizeLimit},
		{"SizeMismatch", testSizeMismatch},
		{"DigestMismatch", testDigestMismatch},
		{"Corrupt", testCorrupt},
		{"NotFound", testNotFound},
		{"InvalidDigest", testInvalidDigest},
		{"Delete", testDelete},
		{"List", testList},
		{"Concurrent", testConcurrent},
		{"BeforePublish", testBeforePublish},
		{"Ended", testEnded},
		{"PutDeleteRace", testPutDeleteRace},
		{"FailedStream", testFailedStream},
		{"Ping", testPing},
		{"SM3", testSM3}, // the gm profile
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newHarness(t)) })
	}
}

// Data returns n deterministic pseudo-random bytes as a stream of unknown
// length (no Len, Seek or WriteTo for a driver to lean on).
func Data(seed uint64, n int64) io.Reader {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// Sum is the hex SHA-256 of Data(seed, n).
func Sum(seed uint64, n int64) string {
	h := sha256.New()
	io.Copy(h, Data(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}

func bytesOf(seed uint64, n int64) []byte {
	b, _ := io.ReadAll(Data(seed, n))
	return b
}

func put(t *testing.T, s storage.Store, r io.Reader, opts storage.PutOptions) storage.Info {
	t.Helper()
	info, err := s.Put(t.Context(), r, opts)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return info
}

// readAll reads an object to its end and returns its digest, failing the
// test on any error.
func readAll(t *testing.T, s storage.Store, sum string) (string, storage.Info) {
	t.Helper()
	rc, info, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatalf("Open(%.12s): %v", sum, err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("reading %.12s: %v", sum, err)
	}
	return hex.EncodeToString(h.Sum(nil)), info
}

// checkEmpty checks that the store lists nothing and holds no remains.
func checkEmpty(t *testing.T, h Harness) {
	t.Helper()
	checkList(t, h.Store, map[string]int64{})
	checkLeftovers(t, h)
}

func checkLeftovers(t *testing.T, h Harness) {
	t.Helper()
	if h.Leftovers == nil {
		return
	}
	if l := h.Leftovers(t); len(l) > 0 {
		t.Errorf("leftovers after failed or duplicate Puts: %q", l)
	}
}

// checkList checks that List returns exactly want (digest to size).
func checkList(t *testing.T, s storage.Store, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	err := s.List(t.Context(), func(info storage.Info) error {
		if _, dup := got[info.SHA256]; dup {
			t.Errorf("List returned %.12s twice", info.SHA256)
		}
		got[info.SHA256] = info.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func checkNotFound(t *testing.T, s storage.Store, sum string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%.12s) = %v, want ErrNotFound", sum, err)
	}
	if rc, _, err := s.Open(t.Context(), sum); !errors.Is(err, storage.ErrNotFound) {
		if rc != nil {
			rc.Close()
		}
		t.Errorf("Open(%.12s) = %v, want ErrNotFound", sum, err)
	}
}

func testRoundTrip(t *testing.T, h Harness) {
	cases := []struct {
		name  string
		size  int64
		known bool
	}{
		{"0B", 0, true},
		{"0B-unknown", 0, false},
		{"1B", 1, true},
		{"1B-unknown", 1, false},
		{"5MiB", 5 * MiB, true},
		{"5MiB-unknown", 5 * MiB, false},
		{"5MiB+1-unknown", 5*MiB + 1, false},
		{"100MiB-unknown", 100 * MiB, false},
	}
	want := map[string]int64{}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seed := uint64(100 + i)
			opts := storage.PutOptions{Size: -1}
			if c.known {
				opts.Size = c.size
			}
			sum := Sum(seed, c.size)
			info := put(t, h.Store, Data(seed, c.size), opts)
			if info.SHA256 != sum || info.Size != c.size {
				t.Fatalf("Put = %.12s/%d, want %.12s/%d", info.SHA256, info.Size, sum, c.size)
			}
			st, err := h.Store.Stat(t.Context(), sum)
			if err != nil || st.SHA256 != sum || st.Size != c.size {
				t.Fatalf("Stat = %+v, %v", st, err)
			}
			got, oinfo := readAll(t, h.Store, sum)
			if got != sum || oinfo.Size != c.size || oinfo.SHA256 != sum {
				t.Fatalf("read back %.12s (Info %+v), want %.12s/%d", got, oinfo, sum, c.size)
			}
			if c.size <= MiB {
				// Small reads, through Read rather than WriteTo.
				rc, _, err := h.Store.Open(t.Context(), sum)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{rc}, c.size+1))
				rc.Close()
				if err != nil || !bytes.Equal(b, bytesOf(seed, c.size)) {
					t.Fatalf("ReadAll: %d bytes, %v", len(b), err)
				}
			}
			want[sum] = c.size
		})
	}
	checkList(t, h.Store, want)
	checkLeftovers(t, h)
}

func testDuplicate(t *testing.T, h Harness) {
	for _, size := range []int64{1000, Large} {
		sum := Sum(1, size)
		first := put(t, h.Store, Data(1, size), storage.PutOptions{Size: -1})
		again := put(t, h.Store, Data(1, size), storage.PutOptions{Size: -1})
		declared := put(t, h.Store, Data(1, size), storage.PutOptions{Size: size, SHA256: sum})
		for _, info := range []storage.Info{first, again, declared} {
			if info.SHA256 != sum || info.Size != size {
				t.Errorf("Put of duplicate = %.12s/%d, want %.12s/%d", info.SHA256, info.Size, sum, size)
			}
		}
		if got, _ := readAll(t, h.Store, sum); got != sum {
			t.Errorf("read back %.12s", got)
		}
	}
	checkList(t, h.Store, map[string]int64{Sum(1, 1000): 1000, Sum(1, Large): Large})
	checkLeftovers(t, h)
}

// counter counts the bytes a Put consumed.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func testSizeLimit(t *testing.T, h Harness) {
	cases := []struct {
		name           string
		size, max, len int64
	}{
		{"unknown", -1, 1000, 10 * MiB},
		{"declared", 10 * MiB, 1000, 10 * MiB},
		{"multipart", -1, Large, 3 * Large},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := &counter{r: Data(2, c.len)}
			_, err := h.Store.Put(t.Context(), src, storage.PutOptions{Size: c.size, MaxSize: c.max})
			if !errors.Is(err, storage.ErrTooLarge) {
				t.Fatalf("Put = %v, want ErrTooLarge", err)
			}
			if c.size > c.max && src.n != 0 {
				t.Errorf("read %d bytes of a stream declared too large", src.n)
			}
			if src.n > c.max+1 {
				t.Errorf("read %d bytes, limit %d: want at most limit+1", src.n, c.max)
			}
			checkEmpty(t, h)
		})
	}
	t.Run("exact", func(t *testing.T) {
		info := put(t, h.Store, Data(3, 1000), storage.PutOptions{Size: -1, MaxSize: 1000})
		if info.Size != 1000 {
			t.Errorf("Put at the limit: size %d", info.Size)
		}
	})
}

func testSizeMismatch(t *testing.T, h Harness) {
	for _, n := range []int64{99, 101, Large + 1} {
		_, err := h.Store.Put(t.Context(), Data(4, n), storage.PutOptions{Size: 100})
		if !errors.Is(err, storage.ErrSizeMismatch) {
			t.Errorf("Put of %d bytes declared 100 = %v, want ErrSizeMismatch", n, err)
		}
	}
	_, err := h.Store.Put(t.Context(), Data(4, Large-1), storage.PutOptions{Size: Large})
	if !errors.Is(err, storage.ErrSizeMismatch) {
		t.Errorf("Put of Large-1 bytes declared Large = %v, want ErrSizeMismatch", err)
	}
	checkEmpty(t, h)
}

func testDigestMismatch(t *testing.T, h Harness) {
	wrong := Sum(99, 10)
	for _, size := range []int64{0, 1000, Large} {
		_, err := h.Store.Put(t.Context(), Data(5, size), storage.PutOptions{Size: -1, SHA256: wrong})
		if !errors.Is(err, storage.ErrDigestMismatch) {
			t.Errorf("Put of %d bytes with a wrong digest = %v, want ErrDigestMismatch", size, err)
		}
		checkNotFound(t, h.Store, Sum(5, size))
		checkNotFound(t, h.Store, wrong)
	}
	checkEmpty(t, h)

	// Declaring the digest of a stored object does not let other bytes through.
	stored := put(t, h.Store, Data(6, 1000), storage.PutOptions{})
	_, err := h.Store.Put(t.Context(), Data(7, 1000), storage.PutOptions{SHA256: stored.SHA256})
	if !errors.Is(err, storage.ErrDigestMismatch) {
		t.Errorf("Put of other bytes declaring a stored digest = %v, want ErrDigestMismatch", err)
	}
	_, err = h.Store.Put(t.Context(), Data(6, 1000), storage.PutOptions{SHA256: strings.ToUpper(stored.SHA256)})
	if !errors.Is(err, storage.ErrInvalidDigest) {
		t.Errorf("Put declaring an upper-case digest = %v, want ErrInvalidDigest", err)
	}
	checkList(t, h.Store, map[string]int64{stored.SHA256: 1000})
}

func testCorrupt(t *testing.T, h Harness) {
	for _, size := range []int64{1, 1000, Large} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			info := put(t, h.Store, Data(8, size), storage.PutOptions{})
			h.Corrupt(t, info.SHA256)

			// Byte by byte through Read: the end must be an error, never io.EOF.
			rc, _, err := h.Store.Open(t.Context(), info.SHA256)
			if err != nil {
				if errors.Is(err, storage.ErrCorrupt) {
					return // detected before reading: fine too
				}
				t.Fatalf("Open of a corrupt object: %v", err)
			}
			buf := make([]byte, 64<<10)
			for {
				_, err = rc.Read(buf)
				if err != nil {
					break
				}
			}
			rc.Close()
			checkCorrupt(t, err, info.SHA256)

			// And through WriteTo, as io.Copy reads.
			rc, _, err = h.Store.Open(t.Context(), info.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
			checkCorrupt(t, err, info.SHA256)
		})
	}
}

func checkCorrupt(t *testing.T, err error, sum string) {
	t.Helper()
	if err == io.EOF || !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("reading an altered object ended with %v, want ErrCorrupt", err)
	}
	var ce *storage.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *CorruptError", err)
	}
	if ce.Want != sum || ce.Got == sum || (ce.Got != "" && !storage.ValidSHA256(ce.Got)) {
		t.Errorf("CorruptError{Want: %q, Got: %q}, want Want %q and another Got", ce.Want, ce.Got, sum)
	}
}

func testNotFound(t *testing.T, h Harness) {
	sum := Sum(9, 10)
	checkNotFound(t, h.Store, sum)
	if err := h.Store.Delete(t.Context(), sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete = %v, want ErrNotFound", err)
	}
	checkList(t, h.Store, map[string]int64{})
}

func testInvalidDigest(t *testing.T, h Harness) {
	valid := Sum(10, 10)
	for _, name := range []string{
		"",
		"abc",
		strings.ToUpper(valid),
		valid + "0",
		"../../../../../../../../../../../../../../../../../../etc/passwd",
		"..%2f" + valid[5:],
		valid[:2] + "/" + valid[3:],
		valid[:63] + "\x00",
	} {
		if _, err := h.Store.Stat(t.Context(), name); !errors.Is(err, storage.ErrInvalidDigest) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidDigest", name, err)
		}
		if rc, _, err := h.Store.Open(t.Context(), name); !errors.Is(err, storage.ErrInvalidDigest) {
			if rc != nil {
				rc.Close()
			}
			t.Errorf("Open(%q) = %v, want ErrInvalidDigest", name, err)
		}
		if err := h.Store.Delete(t.Context(), name); !errors.Is(err, storage.ErrInvalidDigest) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidDigest", name, err)
		}
	}
}

func testDelete(t *testing.T, h Harness) {
	for _, size := range []int64{0, 1000, Large} {
		info := put(t, h.Store, Data(11, size), storage.PutOptions{})
		if err := h.Store.Delete(t.Context(), info.SHA256); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		checkNotFound(t, h.Store, info.SHA256)
		if err := h.Store.Delete(t.Context(), info.SHA256); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("second Delete = %v, want ErrNotFound", err)
		}
		checkEmpty(t, h)
		// Stored again after a delete.
		put(t, h.Store, Data(11, size), storage.PutOptions{})
		if got, _ := readAll(t, h.Store, info.SHA256); got != info.SHA256 {
			t.Errorf("read back after re-Put: %.12s", got)
		}
		if err := h.Store.Delete(t.Context(), info.SHA256); err != nil {
			t.Fatal(err)
		}
	}
}

func testList(t *testing.T, h Harness) {
	want := map[string]int64{}
	for i, size := range []int64{0, 1, 4096, Large} {
		info := put(t, h.Store, Data(uint64(20+i), size), storage.PutOptions{})
		want[info.SHA256] = size
	}
	checkList(t, h.Store, want)

	stop := errors.New("stop")
	calls := 0
	err := h.Store.List(t.Context(), func(storage.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List stopped by its callback: err %v after %d calls, want %v after 1", err, calls, stop)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	const n = 8
	type job struct {
		seed uint64
		size int64
	}
	var jobs []job
	for range n {
		jobs = append(jobs, job{30, 100 << 10}, job{31, Large})
	}
	for i := range n {
		jobs = append(jobs, job{uint64(40 + i), MiB})
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for _, j := range jobs {
		wg.Go(func() {
			info, err := h.Store.Put(t.Context(), Data(j.seed, j.size), storage.PutOptions{})
			if err == nil && (info.SHA256 != Sum(j.seed, j.size) || info.Size != j.size) {
				err = fmt.Errorf("stored as %.12s/%d", info.SHA256, info.Size)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Put: %v", err)
		}
	}
	want := map[string]int64{}
	for _, j := range jobs {
		want[Sum(j.seed, j.size)] = j.size
	}
	checkList(t, h.Store, want)
	for sum := range want {
		if got, _ := readAll(t, h.Store, sum); got != sum {
			t.Errorf("read back %.12s, want %.12s", got, sum)
		}
	}
	checkLeftovers(t, h)
}

// failing reads r, then fails with err instead of io.EOF.
type failing struct {
	r   io.Reader
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

func testFailedStream(t *testing.T, h Harness) {
	broken := errors.New("client went away")
	for _, size := range []int64{1000, Large + MiB} {
		_, err := h.Store.Put(t.Context(), &failing{Data(12, size), broken}, storage.PutOptions{})
		if !errors.Is(err, broken) {
			t.Errorf("Put of a stream failing after %d bytes = %v, want %v", size, err, broken)
		}
	}
	// A context cancelled mid-stream.
	ctx, cancel := context.WithCancel(t.Context())
	src := io.MultiReader(
		Data(13, Large),
		readerFunc(func([]byte) (int, error) { cancel(); return 0, io.EOF }),
		Data(14, 2*Large),
	)
	if _, err := h.Store.Put(ctx, src, storage.PutOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a context cancelled mid-stream = %v, want context.Canceled", err)
	}
	checkEmpty(t, h)
}

// testBeforePublish checks that the hook sees the digest once, before the
// object can be found, and that its error fails the Put and stores nothing.
func testBeforePublish(t *testing.T, h Harness) {
	for _, size := range []int64{0, 1000, Large} {
		sum := Sum(15, size)
		for _, declared := range []string{"", sum} {
			for _, stored := range []bool{false, true} {
				if stored {
					put(t, h.Store, Data(15, size), storage.PutOptions{})
				}
				var calls []string
				visible := false
				opts := storage.PutOptions{SHA256: declared, BeforePublish: func(d string) error {
					calls = append(calls, d)
					_, err := h.Store.Stat(t.Context(), sum)
					visible = err == nil
					return nil
				}}
				info := put(t, h.Store, Data(15, size), opts)
				if info.SHA256 != sum || info.Size != size {
					t.Errorf("Put = %.12s/%d, want %.12s/%d", info.SHA256, info.Size, sum, size)
				}
				if len(calls) != 1 || calls[0] != sum {
					t.Errorf("%d bytes, declared %t, stored %t: BeforePublish called with %.12q, want once with %.12s", size, declared != "", stored, calls, sum)
				}
				if visible && !stored {
					t.Errorf("%d bytes, declared %t: the object was visible before BeforePublish", size, declared != "")
				}
				if err := h.Store.Delete(t.Context(), sum); err != nil {
					t.Fatal(err)
				}

				refused := errors.New("refused")
				opts.BeforePublish = func(string) error { return refused }
				if _, err := h.Store.Put(t.Context(), Data(15, size), opts); !errors.Is(err, refused) {
					t.Errorf("Put whose BeforePublish failed = %v, want %v", err, refused)
				}
				checkEmpty(t, h)
			}
		}
	}
}

// testEnded checks that Ended reports what Put then returns, once, for
// new and stored objects, declared or not and with SM3 asked for, and is
// not called for a stream that is refused.
func testEnded(t *testing.T, h Harness) {
	for _, size := range []int64{0, 1000, Large} {
		sum := Sum(16, size)
		for _, declared := range []string{"", sum} {
			for _, stored := range []bool{false, true} {
				if stored {
					put(t, h.Store, Data(16, size), storage.PutOptions{})
				}
				var calls []storage.Info
				opts := storage.PutOptions{SHA256: declared, SM3: true, Ended: func(i storage.Info) { calls = append(calls, i) }}
				info := put(t, h.Store, Data(16, size), opts)
				if len(calls) != 1 || calls[0].SHA256 != info.SHA256 || calls[0].SM3 != info.SM3 || calls[0].Size != info.Size || info.SM3 == "" {
					t.Errorf("%d bytes, declared %t, stored %t: Ended called with %+v, Put returned %+v", size, declared != "", stored, calls, info)
				}
				if err := h.Store.Delete(t.Context(), sum); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	called := false
	for _, opts := range []storage.PutOptions{{MaxSize: 999}, {SHA256: Sum(17, 1000)}, {Size: 1001}} {
		opts.Ended = func(storage.Info) { called = true }
		if _, err := h.Store.Put(t.Context(), Data(16, 1000), opts); err == nil {
			t.Errorf("Put with %+v succeeded", opts)
		}
	}
	if called {
		t.Error("Ended was called for a refused stream")
	}
	checkEmpty(t, h)
}

// testPutDeleteRace plays a garbage collector against a Put: Deletes run
// until the Put's BeforePublish claims the object, and none after. The
// object must then be there, whole, whether it was stored before or not.
func testPutDeleteRace(t *testing.T, h Harness) {
	for _, size := range []int64{1000, Large} {
		sum := Sum(16, size)
		for round := range 4 {
			if round%2 == 0 {
				put(t, h.Store, Data(16, size), storage.PutOptions{})
			}
			var mu sync.Mutex
			claimed := false
			collected := make(chan error, 1)
			returned := make(chan struct{}) // in case a driver never calls BeforePublish
			go func() {
				for {
					mu.Lock()
					select {
					case <-returned:
						claimed = true
					default:
					}
					if claimed {
						mu.Unlock()
						collected <- nil
						return
					}
					err := h.Store.Delete(context.Background(), sum)
					mu.Unlock()
					if err != nil && !errors.Is(err, storage.ErrNotFound) {
						collected <- err
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			opts := storage.PutOptions{BeforePublish: func(string) error {
				mu.Lock()
				claimed = true
				mu.Unlock()
				return nil
			}}
			if round >= 2 {
				opts.SHA256 = sum
			}
			info, err := h.Store.Put(t.Context(), Data(16, size), opts)
			close(returned)
			if err != nil {
				t.Fatalf("Put racing Deletes: %v", err)
			}
			if err := <-collected; err != nil {
				t.Fatalf("Delete racing a Put: %v", err)
			}
			if info.SHA256 != sum || info.Size != size {
				t.Errorf("Put = %.12s/%d, want %.12s/%d", info.SHA256, info.Size, sum, size)
			}
			if got, _ := readAll(t, h.Store, sum); got != sum {
				t.Errorf("read back %.12s after a Put racing Deletes", got)
			}
			checkList(t, h.Store, map[string]int64{sum: size})
			if err := h.Store.Delete(t.Context(), sum); err != nil {
				t.Fatal(err)
			}
			checkEmpty(t, h)
		}
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func testPing(t *testing.T, h Harness) {
	if err := h.Store.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// HeapGrowth runs f and returns by how much the heap (live and not yet
// collected objects) grew above its level before f, at its peak, sampled
// every millisecond.
func HeapGrowth(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	runtime.GC()
	runtime.GC() // and the sync.Pool victim caches
	base := read()
	peak := base
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, read())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-sampled
	peak = max(peak, read())
	return peak - base
}

// FlipByte alters the middle byte of a file in place, as bit rot would.
func FlipByte(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// sm3Of is the hex SM3 of Data(seed, n).
func sm3Of(seed uint64, n int64) string {
	h := sm3.New()
	io.Copy(h, Data(seed, n))
	return hex.EncodeToString(h.Sum(nil))
}

// testSM3: a Put asked for SM3 returns it beside SHA-256 for new, small,
// multipart, duplicate and declared streams; one not asked returns none,
// and the object stays named by its SHA-256.
func testSM3(t *testing.T, h Harness) {
	for _, size := range []int64{0, 1000, Large} {
		seed := uint64(700 + size%7)
		sum, want := Sum(seed, size), sm3Of(seed, size)
		for _, opts := range []storage.PutOptions{
			{Size: -1, SM3: true},                // new
			{Size: -1, SM3: true},                // stored already
			{Size: size, SHA256: sum, SM3: true}, // declared and stored
			{Size: -1},                           // not asked
		} {
			info := put(t, h.Store, Data(seed, size), opts)
			if info.SHA256 != sum || info.Size != size {
				t.Fatalf("Put(%d, %+v) = %.12s/%d", size, opts, info.SHA256, info.Size)
			}
			if opts.SM3 && info.SM3 != want || !opts.SM3 && info.SM3 != "" {
				t.Errorf("Put(%d bytes, SM3 %v).SM3 = %q, want %q", size, opts.SM3, info.SM3, want)
			}
		}
		if got, _ := readAll(t, h.Store, sum); got != sum {
			t.Fatalf("read back %.12s", got)
		}
	}
	// A refused stream reports no digest of either kind.
	if info, err := h.Store.Put(t.Context(), Data(9, 2000), storage.PutOptions{MaxSize: 1000, SM3: true}); err == nil || info.SM3 != "" {
		t.Errorf("over the limit: %+v, %v", info, err)
	}
	checkLeftovers(t, h)
}
