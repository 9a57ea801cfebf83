package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/minio/minio-go/v7"

	"tongban/api"
	"tongban/api/apitest"
	"tongban/gateway"
	"tongban/storage/s3"
	"tongban/storage/s3test"
	"tongban/storage/storagetest"
)

// The benchmarks' packet: a catalogue item with one material large enough
// for the uploads measured here.
const (
	benchItem     = "BENCH"
	benchKind     = "scan"
	benchMaxBytes = 2 << 30
	benchOrigin   = "jiashan-window:submitter"
	largeSize     = 256 << 20
	smallSize     = 200 << 10
)

// benchCatalog is the built-in catalogue plus BENCH: one required PDF of up
// to 2 GiB, for an enterprise, sent to Qingpu's market-regulation bureau.
func benchCatalog() *gateway.Catalog {
	c := gateway.DefaultCatalog()
	c.Items = append(c.Items, gateway.Item{
		Code: benchItem, Name: "基准测试", NameEN: "Benchmark", Category: gateway.CategoryEnterprise,
		Destinations: []string{"qingpu-amr"},
		Materials: []gateway.Material{{Kind: benchKind, Name: "扫描件", NameEN: "Scan", Required: true,
			Types: []string{gateway.TypePDF}, MaxBytes: benchMaxBytes}},
	})
	return c
}

// benchEnv starts a gateway storing on a new bucket of srv.
func benchEnv(tb testing.TB, srv *s3test.Server) *apitest.Env {
	tb.Helper()
	return benchEnvProfile(tb, srv, false)
}

// benchEnvProfile is benchEnv, under the gm crypto profile if gm.
func benchEnvProfile(tb testing.TB, srv *s3test.Server, gm bool) *apitest.Env {
	tb.Helper()
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey, Secure: srv.Secure, Region: srv.Region, Bucket: srv.NewBucket(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	e := apitest.New(tb, apitest.Options{Store: st, Catalog: benchCatalog(), MaxUploadBytes: benchMaxBytes + 1<<20, GM: gm,
		// The 32-client benchmarks send as one principal.
		API: func(c *api.Config) { c.MaxUploadsPerPrincipal = 64 }})
	// Keep every client's connection alive, as minio-go does for the raw
	// PUTs (httptest's client keeps 2, so 30 of 32 clients would reconnect
	// for every packet).
	e.Client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	return e
}

// pdfBlock is the random MiB that generated files repeat.
var pdfBlock = func() []byte {
	b := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{'t', 'o', 'n', 'g', 'b', 'a', 'n'}).Read(b)
	return b
}()

// pdfStream is a PDF-looking file of n bytes, generated as it is read:
// "%PDF-1.7\n", then copies of pdfBlock, each MiB stamped with the seed and
// its offset, so that every stream, and every MiB of it, is distinct (the
// store deduplicates, which would make a repeated upload free). It reads
// pdfBlock in place and keeps only the stamped head of the current MiB, so
// a stream costs a few dozen bytes whatever n: the figures are the server's.
type pdfStream struct {
	seed   uint64
	n, off int64
	head   [stampLen]byte // the current MiB's first bytes, stamped
}

const stampLen = 32

func newPDFStream(seed uint64, n int64) *pdfStream {
	return &pdfStream{seed: seed, n: n}
}

// next returns the bytes from off to the end of the current MiB (or of the
// stream): the stamped head, or pdfBlock itself past it. The slice is only
// read from.
func (r *pdfStream) next() []byte {
	i := int(r.off % int64(len(pdfBlock)))
	end := min(int64(len(pdfBlock)), int64(i)+r.n-r.off)
	if i >= stampLen {
		return pdfBlock[i:end]
	}
	copy(r.head[:], pdfBlock)
	binary.LittleEndian.PutUint64(r.head[16:], r.seed)
	binary.LittleEndian.PutUint64(r.head[24:], uint64(r.off-int64(i)))
	if r.off-int64(i) == 0 {
		copy(r.head[:], "%PDF-1.7\n")
	}
	return r.head[i:min(stampLen, end)]
}

func (r *pdfStream) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	var n int
	for n < len(p) && r.off < r.n {
		m := copy(p[n:], r.next())
		n += m
		r.off += int64(m)
	}
	return n, nil
}

// WriteTo hands out pdfBlock's own memory in large pieces, without a buffer.
func (r *pdfStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < r.n {
		m, err := w.Write(r.next())
		total += int64(m)
		r.off += int64(m)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// TestPDFStream checks the generator against a plain construction of the
// same bytes, through small odd reads and through WriteTo.
func TestPDFStream(t *testing.T) {
	const n = 2<<20 + 1000
	want := make([]byte, 0, n)
	for off := 0; off < n; off += len(pdfBlock) {
		blk := bytes.Clone(pdfBlock)
		binary.LittleEndian.PutUint64(blk[16:], 9)
		binary.LittleEndian.PutUint64(blk[24:], uint64(off))
		if off == 0 {
			copy(blk, "%PDF-1.7\n")
		}
		want = append(want, blk[:min(len(blk), n-off)]...)
	}
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(newPDFStream(9, n), 40)))
	if err != nil {
		t.Fatal(err)
	}
	odd, err := io.ReadAll(struct{ io.Reader }{newPDFStream(9, n)}) // ReadAll's growing buffers: odd sizes
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, newPDFStream(9, n)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[:40]) || !bytes.Equal(odd, want) || !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("pdfStream generated other bytes than its definition")
	}
}

// benchFile is one file of a streamed packet.
type benchFile struct {
	kind, filename string
	body           io.Reader
}

// streamSubmit posts a packet whose body is written as it is sent: a
// multipart.Writer on an io.Pipe, fed by a goroutine. It returns the
// created packet.
func streamSubmit(tb testing.TB, e *apitest.Env, item, dest string, applicant map[string]any, files []benchFile) packetResp {
	tb.Helper()
	m := apitest.Manifest{Item: item, Destination: dest, Applicant: applicant}
	for _, f := range files {
		m.Materials = append(m.Materials, apitest.MaterialSpec{Kind: f.kind, Filename: f.filename})
	}
	mj, err := json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		pw.CloseWithError(func() error {
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="manifest"`)
			h.Set("Content-Type", "application/json")
			w, err := mw.CreatePart(h)
			if err != nil {
				return err
			}
			if _, err := w.Write(mj); err != nil {
				return err
			}
			for _, f := range files {
				w, err := mw.CreateFormFile(f.kind, f.filename)
				if err != nil {
					return err
				}
				if _, err := io.Copy(w, f.body); err != nil {
					return err
				}
			}
			return mw.Close()
		}())
	}()
	req, err := http.NewRequest("POST", e.URL+"/v1/packets", pr)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.Tokens[benchOrigin])
	resp, err := e.Client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	pr.CloseWithError(io.ErrClosedPipe) // stop the writer if the server answered early
	if err != nil || resp.StatusCode != http.StatusCreated {
		tb.Fatalf("submit: %d %s (%v)", resp.StatusCode, body, err)
	}
	var p packetResp
	if err := json.Unmarshal(body, &p); err != nil {
		tb.Fatal(err)
	}
	return p
}

var benchEnterprise = map[string]any{"type": "enterprise", "name": "上海青嘉贸易有限公司", "id": "91310118MA1G00011T"}

// submitLarge uploads one BENCH packet of size bytes generated from seed
// (or read from src) and returns the material's recorded digest.
func submitLarge(tb testing.TB, e *apitest.Env, seed uint64, size int64, src io.Reader) string {
	tb.Helper()
	if src == nil {
		src = newPDFStream(seed, size)
	}
	p := streamSubmit(tb, e, benchItem, "qingpu-amr", benchEnterprise,
		[]benchFile{{benchKind, fmt.Sprintf("scan-%d.pdf", seed), src}})
	if len(p.Materials) != 1 || p.Materials[0].Size != size || p.Materials[0].ContentType != gateway.TypePDF {
		tb.Fatalf("packet stored as %+v", p.Materials)
	}
	return p.Materials[0].SHA256
}

// benchLarge submits 256 MiB materials through e, each deleted again
// outside the timer.
func benchLarge(b *testing.B, e *apitest.Env) {
	b.SetBytes(largeSize)
	var seed uint64
	for b.Loop() {
		seed++
		sum := submitLarge(b, e, seed, largeSize, nil)
		b.StopTimer()
		e.Store.Delete(context.Background(), sum)
		b.StartTimer()
	}
}

// BenchmarkSubmit measures submissions through the HTTP API to S3
// (VersityGW, its objects in memory: s3test.StartInMemory), all
// sub-benchmarks on one server, each on its own bucket:
//
//   - large: one 256 MiB material, streamed by the client;
//   - large-gm: the same under the gm profile (SM3 beside SHA-256);
//   - raw-s3: the same bytes put by plain minio-go (unknown length, 16 MiB
//     parts, as the S3 driver uses), the bound for large;
//   - small: packets of 4 files of 200 KiB, in packets/s, one client;
//   - small-raw: the same objects put by plain minio-go, the bound for small;
//   - small-32, small-raw-32: the same with 32 clients at once.
func BenchmarkSubmit(b *testing.B) {
	srv := s3test.StartInMemory(b)
	ctx := context.Background()
	b.Run("large", func(b *testing.B) { benchLarge(b, benchEnv(b, srv)) })
	b.Run("large-gm", func(b *testing.B) { benchLarge(b, benchEnvProfile(b, srv, true)) })
	b.Run("raw-s3", func(b *testing.B) {
		c, bucket := srv.Client(), srv.NewBucket(b)
		opts := minio.PutObjectOptions{PartSize: s3.DefaultPartSize, ContentType: "application/pdf"}
		b.SetBytes(largeSize)
		var seed uint64
		for b.Loop() {
			seed++
			key := fmt.Sprint("raw/", seed)
			if _, err := c.PutObject(ctx, bucket, key, newPDFStream(seed, largeSize), -1, opts); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
			b.StartTimer()
		}
	})
	b.Run("small", func(b *testing.B) { benchSmall(b, benchEnv(b, srv), 1) })
	b.Run("small-raw", func(b *testing.B) { benchSmallRaw(b, srv, 1) })
	b.Run("small-32", func(b *testing.B) { benchSmall(b, benchEnv(b, srv), 32) })
	b.Run("small-raw-32", func(b *testing.B) { benchSmallRaw(b, srv, 32) })
}

// smallKinds are the materials of a small packet (ENT-DEREG-S), each sent
// as a file of smallSize bytes; smallManifest and smallApplicant are about
// the sizes of the manifest and the applicant object the gateway stores
// with them.
var smallKinds = []string{"consent_form", "applicant_id", "application_form", "investor_undertaking"}

const (
	smallManifest  = 1 << 10
	smallApplicant = 256
)

// runClients runs op b.N times in all from clients goroutines (1: the
// benchmark's own), and reports packets/s and the CPU time this process
// (client and gateway, not the S3 server) spent per packet, a figure the
// load of a shared machine disturbs less than the wall time.
//
// Before the timer starts, each client runs op warmUp times: a server is
// measured as it runs for days, with its connections open and its buffers
// allocated, not in its first second (whose cost a run of a few hundred
// packets would otherwise carry: about 1 s of CPU for a fresh gateway).
func runClients(b *testing.B, clients int, op func()) {
	const warmUp = 4
	if clients == 1 {
		for range warmUp {
			op() // here, where op may call b.Fatal
		}
	} else {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range warmUp {
					op()
				}
			})
		}
		wg.Wait()
	}
	b.ResetTimer()
	cpu0 := processCPU()
	defer func() {
		b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/packet")
	}()
	if clients == 1 {
		for b.Loop() {
			op()
		}
	} else {
		b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// benchSmall submits packets of 4 files of 200 KiB through the API, from
// clients clients at once. Every file is new to the store.
func benchSmall(b *testing.B, e *apitest.Env, clients int) {
	var seed atomic.Uint64
	runClients(b, clients, func() {
		files := make([]benchFile, len(smallKinds))
		for i, k := range smallKinds {
			files[i] = benchFile{k, k + ".pdf", newPDFStream(seed.Add(1), smallSize)}
		}
		p := streamSubmit(b, e, "ENT-DEREG-S", "qingpu-amr", benchEnterprise, files)
		if len(p.Materials) != len(smallKinds) {
			b.Fatalf("packet stored as %+v", p.Materials)
		}
	})
}

// benchSmallRaw is the floor of benchSmall: the same objects (4 files, the
// applicant object and a manifest) put by plain minio-go, one PUT each with its length known,
// serially per client, as an application storing them itself would.
func benchSmallRaw(b *testing.B, srv *s3test.Server, clients int) {
	c, bucket := srv.Client(), srv.NewBucket(b)
	var seed atomic.Uint64
	put := func(r io.Reader, n int64) {
		key := fmt.Sprint("raw/", seed.Add(1))
		if _, err := c.PutObject(context.Background(), bucket, key, r, n, minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
			b.Fatal(err)
		}
	}
	runClients(b, clients, func() {
		for range smallKinds {
			put(newPDFStream(seed.Add(1), smallSize), smallSize)
		}
		put(newPDFStream(seed.Add(1), smallApplicant), smallApplicant)
		put(newPDFStream(seed.Add(1), smallManifest), smallManifest)
	})
}

// BenchmarkSubmitMemory reports the peak heap growth while one 1 GiB
// material goes through the HTTP API to S3. Client and server share the
// process, so the figure covers both.
func BenchmarkSubmitMemory(b *testing.B) {
	const size = 1 << 30
	e := benchEnv(b, s3test.StartInMemory(b))
	ctx := context.Background()
	b.SetBytes(size)
	var peak uint64
	var seed uint64
	for b.Loop() {
		seed++
		var sum string
		peak = max(peak, storagetest.HeapGrowth(func() { sum = submitLarge(b, e, seed, size, nil) }))
		b.StopTimer()
		e.Store.Delete(ctx, sum)
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-growth-MiB")
}

// BenchmarkSubmitMemorySmall reports the peak heap growth while 32
// clients each submit a small packet (4 files of 200 KiB) through the HTTP
// API to S3 at once, all in flight together. Client and server share the
// process, so the figure covers both.
func BenchmarkSubmitMemorySmall(b *testing.B) {
	const clients = 32
	e := benchEnv(b, s3test.StartInMemory(b))
	var seed atomic.Uint64
	submit := func() {
		files := make([]benchFile, len(smallKinds))
		for i, k := range smallKinds {
			files[i] = benchFile{k, k + ".pdf", newPDFStream(seed.Add(1), smallSize)}
		}
		if p := streamSubmit(b, e, "ENT-DEREG-S", "qingpu-amr", benchEnterprise, files); len(p.Materials) != len(smallKinds) {
			b.Errorf("packet stored as %+v", p.Materials)
		}
	}
	b.SetBytes(clients * int64(len(smallKinds)) * smallSize)
	var peak uint64
	for b.Loop() {
		peak = max(peak, storagetest.HeapGrowth(func() {
			var wg sync.WaitGroup
			for range clients {
				wg.Go(submit)
			}
			wg.Wait()
		}))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-growth-MiB")
}

// TestSubmitMemoryBounded guards streaming: a 256 MiB upload through the
// API to S3 must not grow the heap (client and server together) by more
// than 128 MiB. The digest recorded must be that of the bytes sent.
func TestSubmitMemoryBounded(t *testing.T) {
	const size, limit = 256 << 20, 128 << 20
	e := benchEnv(t, s3test.Start(t))
	h := sha256.New()
	src := io.TeeReader(newPDFStream(1, size), h)
	var sum string
	growth := storagetest.HeapGrowth(func() { sum = submitLarge(t, e, 1, size, src) })
	t.Logf("peak heap growth during a %d MiB upload: %.1f MiB", size>>20, float64(growth)/(1<<20))
	if want := hex.EncodeToString(h.Sum(nil)); sum != want {
		t.Fatalf("stored sha256 %s, sent %s", sum, want)
	}
	if growth > limit {
		t.Fatalf("the heap grew by %.1f MiB during a %d MiB upload, want under %d MiB", float64(growth)/(1<<20), size>>20, limit>>20)
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
