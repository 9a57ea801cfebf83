package s3

import (
	"context"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Sweep removes what crashed or cut-off Puts left behind, if older than
// olderThan: incomplete multipart uploads, and blobs that no pointer names.
// olderThan must exceed the longest Put, or Sweep may remove a blob that a
// running Put is about to name. It implements storage.Sweeper.
func (s *Store) Sweep(ctx context.Context, olderThan time.Duration) error {
	cutoff := time.Now().Add(-olderThan)
	return s.leftovers(ctx, func(key, uploadID string, when time.Time) error {
		if !when.Before(cutoff) {
			return nil
		}
		if uploadID != "" {
			return fail("sweep", s.core.AbortMultipartUpload(ctx, s.bucket, key, uploadID))
		}
		return fail("sweep", s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}))
	})
}

// leftovers calls fn for every incomplete upload (with its upload id) and
// every blob no pointer names (with uploadID "").
func (s *Store) leftovers(ctx context.Context, fn func(key, uploadID string, when time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for u := range s.client.ListIncompleteUploads(ctx, s.bucket, blobPrefix, true) {
		if u.Err != nil {
			return fail("sweep", u.Err)
		}
		if err := fn(u.Key, u.UploadID, u.Initiated); err != nil {
			return err
		}
	}

	named := map[string]bool{}
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: objPrefix, Recursive: true}) {
		if oi.Err != nil {
			return fail("sweep", oi.Err)
		}
		if oi.Size != 0 {
			continue
		}
		e, err := s.head(ctx, strings.TrimPrefix(oi.Key, objPrefix))
		if err == nil && e.blob != "" {
			named[e.blob] = true
		}
	}
	for oi := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: blobPrefix, Recursive: true}) {
		if oi.Err != nil {
			return fail("sweep", oi.Err)
		}
		if named[strings.TrimPrefix(oi.Key, blobPrefix)] {
			continue
		}
		if err := fn(oi.Key, "", oi.LastModified); err != nil {
			return err
		}
	}
	return nil
}
