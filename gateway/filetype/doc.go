// Package filetype decides what an uploaded file is and what it may be
// called: the content type from the bytes (DetectHead, and OFDChecker for
// the ZIP-based OFD), never from the name or the client's declaration; and
// a file name that is safe to store, serve and unpack (CleanName).
package filetype
