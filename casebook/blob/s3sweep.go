package blob

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/casebookhq/casebook/casebook"
)

// Walk calls fn for every blob in the bucket. A blob's ModTime is the later of its
// upload and its touch marker (its last Put).
func (s *S3) Walk(ctx context.Context, fn func(casebook.BlobInfo) error) error {
	touched := map[string]time.Time{}
	if err := s.list(ctx, s.touch(""), func(name string, _ int64, t time.Time) error {
		touched[name] = t
		return nil
	}); err != nil {
		return fmt.Errorf("blob walk: %w", err)
	}
	err := s.list(ctx, s.obj(""), func(name string, size int64, t time.Time) error {
		if !validKey(name) {
			return nil
		}
		if tt := touched[name]; tt.After(t) {
			t = tt
		}
		return fn(casebook.BlobInfo{Key: name, Size: size, ModTime: t})
	})
	if err != nil {
		return fmt.Errorf("blob walk: %w", err)
	}
	return nil
}

// list calls fn for every object under prefix, with its name after the prefix.
func (s *S3) list(ctx context.Context, prefix string, fn func(name string, size int64, t time.Time) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("s3 list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if err := fn(strings.TrimPrefix(aws.ToString(o.Key), prefix), aws.ToInt64(o.Size), aws.ToTime(o.LastModified)); err != nil {
				return err
			}
		}
	}
	return nil
}

// RemoveUnused removes the blob named key if it was last stored before cutoff, and
// reports whether it did. The caller has checked that no row names it.
//
// It writes the gc marker first, then reads the blob's times again. A Put that found
// the blob writes its touch marker and then looks for a gc marker: so either this
// read sees the touch (the blob is kept), or that Put sees the gc marker and waits
// until it is gone, then stores the blob again if it was removed. S3 reads after
// writes are strongly consistent, which is what makes that either-or hold.
func (s *S3) RemoveUnused(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	if !validKey(key) {
		return false, fmt.Errorf("blob %q: %w", key, casebook.ErrInvalidInput)
	}
	if err := s.putSmall(ctx, s.gc(key), nil); err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	removed, err := s.settle(ctx, key, cutoff)
	if err != nil {
		return false, fmt.Errorf("blob remove %s: %w", key, err)
	}
	return removed, nil
}

// settle finishes a removal whose gc marker is written: the blob goes unless it was
// stored at or after cutoff; then the marker goes.
func (s *S3) settle(ctx context.Context, key string, cutoff time.Time) (bool, error) {
	last, err := s.lastStored(ctx, key)
	if errors.Is(err, casebook.ErrNotFound) {
		return false, s.delete(ctx, s.gc(key))
	}
	if err != nil {
		return false, err
	}
	removed := last.Before(cutoff)
	if removed {
		if err := s.delete(ctx, s.obj(key)); err != nil {
			return false, err
		}
		if err := s.delete(ctx, s.touch(key)); err != nil {
			return false, err
		}
	}
	return removed, s.delete(ctx, s.gc(key))
}

// lastStored is when the blob was uploaded or last touched by a Put.
func (s *S3) lastStored(ctx context.Context, key string) (time.Time, error) {
	o, err := s.head(ctx, s.obj(key))
	if err != nil {
		return time.Time{}, err
	}
	last := aws.ToTime(o.LastModified)
	t, err := s.head(ctx, s.touch(key))
	if err == nil && aws.ToTime(t.LastModified).After(last) {
		last = aws.ToTime(t.LastModified)
	} else if err != nil && !errors.Is(err, casebook.ErrNotFound) {
		return time.Time{}, err
	}
	return last, nil
}

// Recover settles removals a crash interrupted (their gc markers would hold up Puts
// of those blobs) and aborts multipart uploads abandoned for longer than StaleTemp,
// by a process killed mid-upload: the storage they hold is otherwise never freed.
func (s *S3) Recover(ctx context.Context, cutoff time.Time) error {
	var pending []string
	if err := s.list(ctx, s.gc(""), func(name string, _ int64, _ time.Time) error {
		pending = append(pending, name)
		return nil
	}); err != nil {
		return fmt.Errorf("blob trash: %w", err)
	}
	for _, name := range pending {
		if !validKey(name) {
			continue
		}
		if _, err := s.settle(ctx, name, cutoff); err != nil {
			return fmt.Errorf("blob trash: %w", err)
		}
	}
	_, err := s.AbortStaleUploads(ctx, time.Now().Add(-StaleTemp))
	return err
}

// AbortStaleUploads aborts the multipart uploads under the prefix started before
// cutoff and returns how many.
func (s *S3) AbortStaleUploads(ctx context.Context, cutoff time.Time) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(s.cfg.Prefix)}
	n := 0
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, fmt.Errorf("s3 list uploads: %w", err)
		}
		for _, u := range out.Uploads {
			if !aws.ToTime(u.Initiated).Before(cutoff) {
				continue
			}
			if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: in.Bucket, Key: u.Key, UploadId: u.UploadId}); err != nil && status(err) != 404 {
				return n, fmt.Errorf("s3 abort upload %s: %w", aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}
