package filetype

import (
	"errors"
	"strings"
	"testing"
)

func TestDetectHead(t *testing.T) {
	tests := []struct {
		head string
		want string
		seen string // part of the error message when unsupported
	}{
		{"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF, ""},
		{"\xff\xd8\xff\xe0\x00\x10JFIF\x00", JPEG, ""},
		{"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PNG, ""},
		{"PK\x03\x04\x14\x00\x08\x00", ZIP, ""},
		{"%PDF-1.4\nPK\x03\x04", PDF, ""}, // polyglot: the head decides
		{"<!DOCTYPE html><html><body>", "", "text/html"},
		{"  <html>", "", "text/html"},
		{"GIF89a\x01\x00\x01\x00", "", "image/gif"},
		{"hello, world\n", "", "text/plain"},
		{"\x00\x01\x02\x03\x04\x05\x06\x07", "", "unrecognised binary data"},
		{"PK\x05\x06\x00\x00\x00\x00", "", ""}, // empty zip: nothing to check
		{"%PDF", "", ""},
		{"\x89PNG\r\n\x1a", "", ""},
		{"", "", "empty"},
	}
	for _, tt := range tests {
		got, err := DetectHead([]byte(tt.head))
		if got != tt.want {
			t.Errorf("DetectHead(%q) = %q, %v; want %q", tt.head, got, err, tt.want)
		}
		if tt.want != "" {
			if err != nil {
				t.Errorf("DetectHead(%q): %v", tt.head, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.seen) {
			t.Errorf("DetectHead(%q) error = %v, want ErrUnsupported naming %q", tt.head, err, tt.seen)
		}
	}
}
