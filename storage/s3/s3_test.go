package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"tongban/storage"
	"tongban/storage/s3test"
	"tongban/storage/storagetest"
)

const MiB = storagetest.MiB

// newStore opens a store on a new bucket of srv. Few retries: a test of a
// dead server should not wait out minio-go's default ten.
func newStore(t *testing.T, srv *s3test.Server, endpoint string, partSize int64) *Store {
	t.Helper()
	if endpoint == "" {
		endpoint = srv.Endpoint
	}
	s, err := Open(t.Context(), Config{
		Endpoint:   endpoint,
		AccessKey:  srv.AccessKey,
		SecretKey:  srv.SecretKey,
		Secure:     srv.Secure,
		Region:     srv.Region,
		Bucket:     srv.NewBucket(t),
		PartSize:   partSize,
		MaxRetries: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the suite with the smallest part size, so that its
// Large objects take the multipart path.
func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	storagetest.Run(t, func(t *testing.T) storagetest.Harness {
		s := newStore(t, srv, "", MinPartSize)
		return storagetest.Harness{
			Store:     s,
			Corrupt:   func(t *testing.T, sum string) { corrupt(t, srv, s, sum) },
			Leftovers: func(t *testing.T) []string { return leftovers(t, s) },
		}
	})
}

func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	var l []string
	err := s.leftovers(t.Context(), func(key, uploadID string, _ time.Time) error {
		if uploadID != "" {
			key += " (incomplete upload)"
		}
		l = append(l, key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// dataKey is the key holding an object's bytes: its own or its blob's.
func dataKey(t *testing.T, s *Store, sum string) string {
	t.Helper()
	e, err := s.head(t.Context(), sum)
	if err != nil {
		t.Fatal(err)
	}
	if e.blob != "" {
		return blobKey(e.blob)
	}
	return objKey(sum)
}

// corrupt flips a byte of an object's data: in its file on disk under
// VersityGW, or by rewriting it through the S3 API on an external server.
func corrupt(t *testing.T, srv *s3test.Server, s *Store, sum string) {
	t.Helper()
	key := dataKey(t, s, sum)
	if srv.Dir() != "" {
		storagetest.FlipByte(t, filepath.Join(srv.Dir(), s.bucket, filepath.FromSlash(key)))
		return
	}
	c := srv.Client()
	obj, err := c.GetObject(t.Context(), s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if _, err := c.PutObject(t.Context(), s.bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestLayout checks which streams are stored whole under their name and
// which as a blob and a pointer, around the boundaries of the buffer
// classes and of a part.
func TestLayout(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, "", MinPartSize)
	for i, c := range []struct {
		size    int64
		pointer bool
	}{
		{minBuf - 1, false},
		{minBuf, false},
		{minBuf + 1, false},
		{minBuf * bufGrowth, false},
		{minBuf*bufGrowth + 1, false},
		{4 * MiB, false}, // the largest class below a part
		{4*MiB + 1, false},
		{MinPartSize - 1, false},
		{MinPartSize, true}, // a full first part: multipart, with one part
		{MinPartSize + 1, true},
		{2 * MinPartSize, true},
	} {
		seed := uint64(200 + i)
		for _, known := range []bool{false, true} {
			opts := storage.PutOptions{Size: -1}
			if known {
				opts.Size = c.size
			}
			info, err := s.Put(t.Context(), storagetest.Data(seed, c.size), opts)
			if err != nil {
				t.Fatalf("Put of %d bytes: %v", c.size, err)
			}
			if info.SHA256 != storagetest.Sum(seed, c.size) || info.Size != c.size {
				t.Fatalf("Put of %d bytes = %+v", c.size, info)
			}
			if pointer := dataKey(t, s, info.SHA256) != objKey(info.SHA256); pointer != c.pointer {
				t.Errorf("%d bytes stored as a pointer: %v, want %v", c.size, pointer, c.pointer)
			}
			rc, _, err := s.Open(t.Context(), info.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || int64(len(b)) != c.size {
				t.Fatalf("read back %d bytes, %v", len(b), err)
			}
			if err := s.Delete(t.Context(), info.SHA256); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l := leftovers(t, s); len(l) > 0 {
		t.Errorf("leftovers: %q", l)
	}
}

// TestServerStoppedMidUpload kills the server while a multipart Put is in
// flight, then brings it back.
func TestServerStoppedMidUpload(t *testing.T) {
	srv := s3test.StartVersityGW(t) // must be ours to stop
	s := newStore(t, srv, "", MinPartSize)
	const size = 64 * MiB
	sum := storagetest.Sum(1, size)

	src := &hook{r: storagetest.Data(1, size), at: 3 * MinPartSize, fn: srv.Stop}
	_, err := s.Put(t.Context(), src, storage.PutOptions{Size: -1})
	if !src.fired {
		t.Fatal("the server was not stopped during the upload")
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Put while the server died = %v, want ErrUnavailable", err)
	}
	t.Logf("Put: %v", err)
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Ping of a dead server = %v, want ErrUnavailable", err)
	}
	if _, err := s.Stat(t.Context(), sum); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat on a dead server = %v, want ErrUnavailable", err)
	}

	srv.Restart()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if _, err := s.Stat(t.Context(), sum); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of the cut-off object = %v, want ErrNotFound", err)
	}
	n := 0
	if err := s.List(t.Context(), func(storage.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("List after restart: %d objects, %v; want none", n, err)
	}
	// The abort could not reach the dead server: Sweep finishes the job.
	t.Logf("leftovers before Sweep: %q", leftovers(t, s))
	if err := s.Sweep(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if l := leftovers(t, s); len(l) > 0 {
		t.Errorf("leftovers after Sweep: %q", l)
	}

	info, err := s.Put(t.Context(), storagetest.Data(1, size), storage.PutOptions{Size: -1})
	if err != nil || info.SHA256 != sum {
		t.Fatalf("Put after restart = %+v, %v", info, err)
	}
	rc, _, err := s.Open(t.Context(), sum)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
}

// TestServerStoppedMidRead kills the server while a large object is being
// read: the reader fails with ErrUnavailable, not ErrCorrupt nor io.EOF.
func TestServerStoppedMidRead(t *testing.T) {
	srv := s3test.StartVersityGW(t)
	s := newStore(t, srv, "", 0)
	const size = 200 * MiB // more than the kernel buffers between the two
	info, err := s.Put(t.Context(), storagetest.Data(2, size), storage.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Open(t.Context(), info.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, MiB); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrCorrupt) {
		t.Errorf("reading from a dead server = %v, want ErrUnavailable", err)
	}
	t.Logf("read: %v", err)
	srv.Restart()
}

// hook reads r and calls fn once, synchronously, when at bytes have been read.
type hook struct {
	r     io.Reader
	at, n int64
	fn    func()
	fired bool
}

func (h *hook) Read(p []byte) (int, error) {
	if !h.fired && h.n >= h.at {
		h.fired = true
		h.fn()
	}
	n, err := h.r.Read(p)
	h.n += int64(n)
	return n, err
}

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // nothing listens there now
	_, err = Open(t.Context(), Config{Endpoint: l.Addr().String(), Bucket: "bucket", MaxRetries: 1})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Open of a closed port = %v, want ErrUnavailable", err)
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Bucket: "b"},
		{Endpoint: "localhost:9000"},
		{Endpoint: "http://localhost:9000", Bucket: "b"},
		{Endpoint: "localhost:9000", Bucket: "b", PartSize: MiB},
	} {
		if _, err := Open(t.Context(), cfg); err == nil || errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Open(%+v) = %v, want a configuration error", cfg, err)
		}
	}
}

// TestServerVerifies checks that every upload request carries a checksum
// of its payload (a single PUT its SHA-256, a part its CRC32C), and that
// the server refuses a payload altered in transit.
func TestServerVerifies(t *testing.T) {
	srv := s3test.Start(t)
	target, _ := url.Parse("http://" + srv.Endpoint)
	if srv.Secure {
		target.Scheme = "https"
	}
	var alter atomic.Bool
	var mu sync.Mutex
	var puts, checked int
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // signed by the client
		if r.Out.Method != http.MethodPut || r.Out.ContentLength <= 0 {
			return
		}
		body, _ := io.ReadAll(r.Out.Body)
		r.Out.Body.Close()
		sum := sha256.Sum256(body)
		crc := binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
		mu.Lock()
		puts++
		if r.Out.Header.Get("X-Amz-Checksum-Sha256") == base64.StdEncoding.EncodeToString(sum[:]) ||
			r.Out.URL.Query().Has("partNumber") && r.Out.Header.Get("X-Amz-Checksum-Crc32c") == base64.StdEncoding.EncodeToString(crc) {
			checked++
		}
		mu.Unlock()
		if alter.Load() {
			body[len(body)/2] ^= 1
		}
		r.Out.Body = io.NopCloser(bytes.NewReader(body))
	}}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	s := newStore(t, srv, strings.TrimPrefix(ps.URL, "http://"), MinPartSize)

	for _, size := range []int64{1000, 2*MinPartSize + 1} {
		if _, err := s.Put(t.Context(), storagetest.Data(50, size), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if puts == 0 || checked != puts {
		t.Errorf("%d of %d uploads carried their payload's checksum", checked, puts)
	}

	alter.Store(true)
	for _, size := range []int64{1000, 2*MinPartSize + 1} {
		_, err := s.Put(t.Context(), storagetest.Data(51, size), storage.PutOptions{})
		if err == nil {
			t.Errorf("Put of %d bytes altered in transit succeeded", size)
		} else if !strings.Contains(strings.ToLower(err.Error()), "checksum") && !strings.Contains(err.Error(), "BadDigest") {
			t.Errorf("Put of %d bytes altered in transit: %v; want the server's checksum refusal", size, err)
		}
		t.Logf("altered in transit: %v", err)
		if _, err := s.Stat(t.Context(), storagetest.Sum(51, size)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat after a refused upload = %v, want ErrNotFound", err)
		}
	}
	alter.Store(false)
	if l := leftovers(t, s); len(l) > 0 {
		t.Errorf("leftovers: %q", l)
	}
}

// TestPutMemory bounds the heap a Put of unknown length uses, with the
// default part size. BenchmarkPutMemory measures it for 1 GiB.
func TestPutMemory(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, "", 0)
	const size = 128 * MiB
	var err error
	growth := storagetest.HeapGrowth(func() {
		_, err = s.Put(context.Background(), storagetest.Data(60, size), storage.PutOptions{Size: -1})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("heap growth during a %d MiB Put: %.1f MiB", size/MiB, float64(growth)/MiB)
	if growth >= 64*MiB {
		t.Errorf("heap grew by %.1f MiB during a Put, want < 64 MiB", float64(growth)/MiB)
	}
}

// TestPutMemoryConcurrentSmall bounds the heap that many small Puts of
// unknown length hold at once: each must not take a whole part buffer.
func TestPutMemoryConcurrentSmall(t *testing.T) {
	const clients, size = 32, 200 << 10
	srv := s3test.Start(t)
	s := newStore(t, srv, "", 0)
	errs := make(chan error, clients)
	growth := storagetest.HeapGrowth(func() {
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				_, err := s.Put(context.Background(), storagetest.Data(uint64(70+i), size), storage.PutOptions{Size: -1})
				errs <- err
			})
		}
		wg.Wait()
	})
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("heap growth during %d concurrent Puts of %d KiB: %.1f MiB", clients, size>>10, float64(growth)/MiB)
	if growth >= 256*MiB {
		t.Errorf("heap grew by %.1f MiB during %d concurrent small Puts, want < 256 MiB", float64(growth)/MiB, clients)
	}
}

// TestRequestsPerSmallObject counts the requests a Put of a stream that
// fits in a part sends: one, whether the object is new or stored already.
func TestRequestsPerSmallObject(t *testing.T) {
	srv := s3test.Start(t)
	target, _ := url.Parse("http://" + srv.Endpoint)
	if srv.Secure {
		target.Scheme = "https"
	}
	var requests atomic.Int64
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // signed by the client
		requests.Add(1)
	}}
	ps := httptest.NewServer(proxy)
	defer ps.Close()
	s := newStore(t, srv, strings.TrimPrefix(ps.URL, "http://"), MinPartSize)
	for _, c := range []struct {
		name string
		opts storage.PutOptions
	}{
		{"new", storage.PutOptions{}},
		{"stored", storage.PutOptions{}},
		{"stored, declared", storage.PutOptions{SHA256: storagetest.Sum(52, 300<<10)}},
	} {
		requests.Store(0)
		info, err := s.Put(t.Context(), storagetest.Data(52, 300<<10), c.opts)
		if err != nil || info.Size != 300<<10 {
			t.Fatalf("%s: Put = %+v, %v", c.name, info, err)
		}
		if n := requests.Load(); n != 1 {
			t.Errorf("%s: Put of a small object sent %d requests, want 1", c.name, n)
		}
	}
}

// TestListFromResumes: a listing stopped part-way resumes after the last
// digest it saw, with nothing missed and nothing twice.
func TestListFromResumes(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, srv, "", MinPartSize)
	var want []string
	for i := range 7 {
		info, err := s.Put(t.Context(), strings.NewReader(fmt.Sprintf("object %d", i)), storage.PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, info.SHA256)
	}
	sort.Strings(want)
	stop := errors.New("stop")
	var got []string
	last := ""
	for range len(want) + 1 {
		n := 0
		err := s.ListFrom(t.Context(), last, func(info storage.Info) error {
			if n == 3 {
				return stop
			}
			n++
			got = append(got, info.SHA256)
			last = info.SHA256
			return nil
		})
		if err == nil {
			break
		}
		if !errors.Is(err, stop) {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("resumed listing %v, want %v", got, want)
	}
	if err := s.ListFrom(t.Context(), "../x", func(storage.Info) error { return nil }); err == nil {
		t.Fatal("ListFrom accepted a bad digest")
	}
}
