// Package s3test gives tests a real S3 server: by default a VersityGW
// (https://github.com/versity/versitygw, posix backend) on a free loopback
// port over a temporary directory, built from source on first use and
// stopped when the test ends.
//
// To run the tests against another S3 server instead, set:
//
//	TONGBAN_TEST_S3_ENDPOINT    host:port, without scheme
//	TONGBAN_TEST_S3_ACCESS_KEY
//	TONGBAN_TEST_S3_SECRET_KEY
//	TONGBAN_TEST_S3_SECURE      "true" for TLS
//	TONGBAN_TEST_S3_REGION      optional
//
// Buckets created on it by NewBucket are emptied and removed at the end.
// TONGBAN_VERSITYGW names a versitygw binary to use instead of building one.
//
// When no server can be had the test fails, saying why; it is never skipped.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables naming an external S3 server.
const (
	EnvEndpoint  = "TONGBAN_TEST_S3_ENDPOINT"
	EnvAccessKey = "TONGBAN_TEST_S3_ACCESS_KEY"
	EnvSecretKey = "TONGBAN_TEST_S3_SECRET_KEY"
	EnvSecure    = "TONGBAN_TEST_S3_SECURE"
	EnvRegion    = "TONGBAN_TEST_S3_REGION"
)

const (
	installTimeout = 10 * time.Minute // a cold build takes one to a few minutes
	startTimeout   = 30 * time.Second
)

// Server is a running S3 server.
type Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Secure    bool
	Region    string

	tb   testing.TB
	bin  string // versitygw; "" for an external server
	dir  string // posix root
	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
	out  *tailBuffer
}

// Start returns the external server named by TONGBAN_TEST_S3_ENDPOINT if
// set, else a new VersityGW (see StartVersityGW).
func Start(tb testing.TB) *Server {
	tb.Helper()
	endpoint := os.Getenv(EnvEndpoint)
	if endpoint == "" {
		return StartVersityGW(tb)
	}
	s := &Server{
		Endpoint:  endpoint,
		AccessKey: os.Getenv(EnvAccessKey),
		SecretKey: os.Getenv(EnvSecretKey),
		Secure:    os.Getenv(EnvSecure) == "true",
		Region:    os.Getenv(EnvRegion),
		tb:        tb,
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if _, err := s.Client().ListBuckets(ctx); err != nil {
		tb.Fatalf("s3test: no S3 server for the tests: %s=%s: %v", EnvEndpoint, endpoint, err)
	}
	return s
}

// StartVersityGW starts a VersityGW on a free loopback port with a temporary
// directory, building it first if needed (see Install), and stops it when
// the test ends. Tests that stop and restart the server use it directly.
func StartVersityGW(tb testing.TB) *Server {
	tb.Helper()
	return startVersityGW(tb, tb.TempDir())
}

// StartInMemory is Start for benchmarks: a new VersityGW keeps its objects
// in a directory in /dev/shm (tmpfs) where there is one, so that what a
// benchmark measures is the requests and not how fast a shared disk writes
// back what earlier runs wrote. An external server is used as Start would.
func StartInMemory(tb testing.TB) *Server {
	tb.Helper()
	if os.Getenv(EnvEndpoint) != "" {
		return Start(tb)
	}
	const shm, need = "/dev/shm", 4 << 30 // a 1 GiB benchmark stores its object twice at most
	var fs syscall.Statfs_t
	if err := syscall.Statfs(shm, &fs); err != nil || int64(fs.Bavail)*int64(fs.Bsize) < need {
		tb.Logf("s3test: no tmpfs with %d GiB free at %s (%v): the server keeps its objects on disk", need>>30, shm, err)
		return StartVersityGW(tb)
	}
	dir, err := os.MkdirTemp(shm, "tongban-s3test-")
	if err != nil {
		tb.Logf("s3test: no tmpfs (%v): the server keeps its objects on disk", err)
		return StartVersityGW(tb)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	return startVersityGW(tb, dir)
}

func startVersityGW(tb testing.TB, dir string) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	bin, err := Install(ctx)
	if err != nil {
		tb.Fatalf("s3test: no S3 server for the tests: VersityGW: %v (%s may name a versitygw binary, or %s and its keys another S3 server)",
			err, EnvVersityGW, EnvEndpoint)
	}
	s := &Server{
		AccessKey: "tongban" + randomHex(6),
		SecretKey: randomHex(20),
		tb:        tb,
		bin:       bin,
		dir:       dir,
	}
	for attempt := 0; ; attempt++ {
		s.Endpoint, err = freePort()
		if err == nil {
			err = s.start()
		}
		if err == nil {
			break
		}
		if attempt == 3 {
			tb.Fatalf("s3test: no S3 server for the tests: %v", err)
		}
	}
	tb.Cleanup(s.Stop) // after TempDir's cleanup was registered: runs before it
	return s
}

// Dir returns the directory VersityGW serves: a bucket is a directory in it
// and an object a file, at Dir()/<bucket>/<key>. "" for an external server.
func (s *Server) Dir() string { return s.dir }

// External reports whether the server was named by the environment.
func (s *Server) External() bool { return s.bin == "" }

// Client returns a plain minio-go client of the server.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure: s.Secure,
		Region: s.Region,
	})
	if err != nil {
		s.tb.Fatalf("s3test: %v", err)
	}
	return c
}

// NewBucket returns the name of a new, empty bucket. On an external server
// the bucket and everything in it are removed when the test ends.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := "tongban-test-" + randomHex(6)
	c := s.Client()
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		tb.Fatalf("s3test: create bucket: %v", err)
	}
	if s.External() {
		tb.Cleanup(func() { removeBucket(c, name) })
	}
	return name
}

func removeBucket(c *minio.Client, bucket string) {
	ctx := context.Background()
	for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
		if u.Err == nil {
			c.RemoveIncompleteUpload(ctx, bucket, u.Key)
		}
	}
	objs := c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	for r := range c.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		_ = r // best effort
	}
	c.RemoveBucket(ctx, bucket)
}

// Stop kills the server at once, as a crash or a power cut would; a Put in
// flight sees its connection drop. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.External() {
		s.tb.Fatal(errExternal)
	}
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Restart starts a stopped server again on the same port and directory.
// Like Stop it reports failures to the test that started the server, so
// call it from that test's goroutine.
func (s *Server) Restart() {
	s.tb.Helper()
	if s.External() {
		s.tb.Fatal(errExternal)
	}
	s.Stop()
	if err := s.start(); err != nil {
		s.tb.Fatalf("s3test: restart: %v", err)
	}
}

// start runs versitygw and waits until it answers ListBuckets.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Keep-alive as production S3 servers have it: without it every request
	// opens a new connection, which dominates the cost of small objects.
	cmd := exec.Command(s.bin, "--port", s.Endpoint, "--keep-alive", "--quiet", "posix", s.dir)
	cmd.Env = append(cleanEnv(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.out = &tailBuffer{}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start versitygw: %w", err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	s.cmd, s.exit = cmd, exit

	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), MaxRetries: 1})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = c.ListBuckets(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exit:
			s.cmd = nil
			return fmt.Errorf("versitygw on %s exited: %v\n%s", s.Endpoint, cmd.ProcessState, s.out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exit
			s.cmd = nil
			return fmt.Errorf("versitygw on %s not ready after %v: %v\n%s", s.Endpoint, startTimeout, err, s.out)
		}
	}
}

// cleanEnv is the environment without the variables that configure
// versitygw, which would override its command line.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VGW_") && !strings.HasPrefix(kv, "ROOT_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns a loopback address that was free a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var errExternal = errors.New("s3test: the server is external (" + EnvEndpoint + ") and cannot be stopped or restarted")

// tailBuffer keeps the last bytes of the server's output for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > tailSize {
		b = b[len(b)-tailSize:]
	}
	return "versitygw output (tail):\n" + string(b)
}
