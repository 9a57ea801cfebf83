package storage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// onlyReader hides every method but Read.
type onlyReader struct{ io.Reader }

func TestValidSHA256(t *testing.T) {
	good := sum(nil)
	for s, want := range map[string]bool{
		good:                        true,
		strings.ToUpper(good):       false,
		good[:63]:                   false,
		good + "0":                  false,
		good[:63] + "g":             false,
		"../" + good[3:]:            false,
		good[:32] + "/" + good[33:]: false,
		"":                          false,
	} {
		if got := ValidSHA256(s); got != want {
			t.Errorf("ValidSHA256(%q) = %v, want %v", s, got, want)
		}
		if err := CheckSHA256(s); (err == nil) != want || (err != nil && !errors.Is(err, ErrInvalidDigest)) {
			t.Errorf("CheckSHA256(%q) = %v", s, err)
		}
	}
}

func TestPutReader(t *testing.T) {
	data := []byte("the application materials")
	tests := []struct {
		name string
		opts PutOptions
		want error // nil: reads to a clean EOF
	}{
		{"plain", PutOptions{}, nil},
		{"unknown", PutOptions{Size: -1}, nil},
		{"declared", PutOptions{Size: int64(len(data)), SHA256: sum(data), MaxSize: int64(len(data))}, nil},
		{"too large", PutOptions{MaxSize: 10}, ErrTooLarge},
		{"longer than declared", PutOptions{Size: 10}, ErrSizeMismatch},
		{"shorter than declared", PutOptions{Size: 100}, ErrSizeMismatch},
		{"wrong digest", PutOptions{SHA256: sum([]byte("other"))}, ErrDigestMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, err := NewPutReader(onlyReader{bytes.NewReader(data)}, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(iotest.OneByteReader(pr))
			if tt.want == nil {
				if err != nil || !bytes.Equal(got, data) || !pr.Done() || pr.SHA256() != sum(data) || pr.Size() != int64(len(data)) {
					t.Fatalf("read %q, %v; Done %v, SHA256 %s, Size %d", got, err, pr.Done(), pr.SHA256(), pr.Size())
				}
				return
			}
			if !errors.Is(err, tt.want) || pr.Done() {
				t.Fatalf("ReadAll = %v (Done %v), want %v", err, pr.Done(), tt.want)
			}
			if _, again := pr.Read(make([]byte, 10)); again != err {
				t.Errorf("error not sticky: %v, then %v", err, again)
			}
		})
	}
}

// TestPutReaderReadsLimitPlusOne checks that a too large stream is not
// read further than the one byte that proves it too large.
func TestPutReaderReadsLimitPlusOne(t *testing.T) {
	src := &countingReader{r: bytes.NewReader(make([]byte, 1<<20))}
	pr, err := NewPutReader(src, PutOptions{MaxSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, pr)
	if !errors.Is(err, ErrTooLarge) || src.n != 1001 {
		t.Errorf("read %d bytes, err %v; want 1001 bytes and ErrTooLarge", src.n, err)
	}
}

func TestPutOptionsCheck(t *testing.T) {
	if _, err := NewPutReader(nil, PutOptions{SHA256: "nope"}); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("invalid declared digest: %v", err)
	}
	if _, err := NewPutReader(nil, PutOptions{Size: 11, MaxSize: 10}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("declared size over the limit: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestVerifyReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	altered := bytes.Clone(data)
	altered[len(altered)/2] ^= 1
	tests := []struct {
		name   string
		stored []byte
	}{
		{"intact", data},
		{"altered", altered},
		{"truncated", data[:len(data)-1]},
		{"extended", append(bytes.Clone(data), 'x')},
		{"empty", nil},
	}
	for _, tt := range tests {
		corrupt := !bytes.Equal(tt.stored, data)
		t.Run(tt.name+"/Read", func(t *testing.T) {
			v := VerifyReader(io.NopCloser(onlyReader{bytes.NewReader(tt.stored)}), sum(data), int64(len(data)))
			// Read in odd sizes; EOF may come only for intact bytes.
			buf := make([]byte, 777)
			var err error
			for err == nil {
				_, err = v.Read(buf)
			}
			checkEnd(t, err, corrupt, sum(data), sum(tt.stored))
		})
		t.Run(tt.name+"/WriteTo", func(t *testing.T) {
			v := VerifyReader(io.NopCloser(bytes.NewReader(tt.stored)), sum(data), int64(len(data)))
			var out bytes.Buffer
			_, err := io.Copy(&out, v)
			if err == nil {
				err = io.EOF // io.Copy reports a clean end as nil
			}
			checkEnd(t, err, corrupt, sum(data), sum(tt.stored))
			if !corrupt && !bytes.Equal(out.Bytes(), data) {
				t.Error("WriteTo altered the bytes")
			}
		})
	}
}

func checkEnd(t *testing.T, err error, corrupt bool, want, got string) {
	t.Helper()
	if !corrupt {
		if err != io.EOF {
			t.Fatalf("intact object ended with %v, want io.EOF", err)
		}
		return
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt object ended with %v, want a *CorruptError", err)
	}
	if ce.Want != want || ce.Got != got {
		t.Errorf("CorruptError{%.12s, %.12s}, want {%.12s, %.12s}", ce.Want, ce.Got, want, got)
	}
}

// TestVerifyReaderPassesErrors checks that a failing source is reported as
// such, not as corruption nor as a clean end.
func TestVerifyReaderPassesErrors(t *testing.T) {
	broken := errors.New("connection reset")
	src := io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(broken))
	v := VerifyReader(io.NopCloser(src), sum([]byte("partial object")), 14)
	_, err := io.ReadAll(v)
	if !errors.Is(err, broken) || errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadAll = %v, want %v", err, broken)
	}
}

func TestCorruptErrorMessage(t *testing.T) {
	for _, e := range []*CorruptError{{Want: "aa", Got: "bb"}, {Want: "aa"}} {
		if !strings.Contains(e.Error(), "aa") || !errors.Is(e, ErrCorrupt) {
			t.Errorf("%v", e)
		}
	}
}
