package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob/s3test"
)

// newS3 opens a store on a fresh bucket of a real S3 server, with small parts so that
// a few MiB already take a multipart upload.
func newS3(t testing.TB, srv *s3test.Server, prefix string, keys ...*Key) *Store {
	t.Helper()
	c, err := ParseS3URL(srv.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	c.AccessKeyID, c.SecretAccessKey = s3test.AccessKey, s3test.SecretKey
	c.PartSize = 5 << 20
	c.SpoolDir = t.TempDir()
	b, err := NewS3(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(context.Background(), b, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestS3PutOpen(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		key  *Key
		size int
	}{
		{"empty", nil, 0},
		{"small plaintext", nil, 1000},
		{"small encrypted", NewKey(), 1000},
		{"multipart plaintext", nil, 12<<20 + 5},
		{"multipart encrypted", NewKey(), 12<<20 + 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(c.name, " ", "-")
			st := newS3(t, srv, prefix, c.key)
			data := make([]byte, c.size)
			rand.Read(data)
			b, err := st.Put(ctx, bytes.NewReader(data), 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, st, b.Key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes, %v", len(got), err)
			}
			if plain, err := st.Plaintext(ctx, b.Key); err != nil || plain != (c.key == nil) {
				t.Errorf("Plaintext = %v, %v", plain, err)
			}
			key := aws.String(prefix + "/blobs/" + b.Key)
			head, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s3test.Bucket), Key: key, ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(head.ChecksumSHA256) == "" {
				t.Error("the server recorded no SHA-256 checksum: none was sent")
			}
			if c.key != nil {
				raw, _ := os.ReadFile(filepath.Join(srv.Dir(), s3test.Bucket, *key))
				if len(data) >= 64 && bytes.Contains(raw, data[:64]) {
					t.Error("plaintext visible in the bucket")
				}
			}
			// A second Put of the same content uploads nothing.
			time.Sleep(1100 * time.Millisecond) // past the second the object's time has
			again, err := st.Put(ctx, bytes.NewReader(data), 1<<30)
			if err != nil || again.Key != b.Key {
				t.Fatalf("second Put = %v, %v", again, err)
			}
			head2, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s3test.Bucket), Key: key})
			if err != nil || !head2.LastModified.Equal(*head.LastModified) || aws.ToString(head2.ETag) != aws.ToString(head.ETag) {
				t.Errorf("the second Put rewrote the object: %v -> %v (%v)", head.LastModified, head2.LastModified, err)
			}
			var info casebook.BlobInfo
			st.Walk(ctx, func(bi casebook.BlobInfo) error { info = bi; return nil })
			if !info.ModTime.After(*head.LastModified) {
				t.Errorf("the second Put did not mark the blob as stored again: %v", info.ModTime)
			}
		})
	}
}

func TestS3Range(t *testing.T) {
	srv := s3test.Start(t)
	for _, c := range []struct {
		name string
		key  *Key
	}{{"plaintext", nil}, {"encrypted", NewKey()}} {
		t.Run(c.name, func(t *testing.T) {
			checkRanges(t, newS3(t, srv, c.name, c.key))
		})
	}
}

func TestS3Damaged(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	st := newS3(t, srv, "p", NewKey())
	data := make([]byte, 4*segmentSize)
	rand.Read(data)
	b, err := st.Put(ctx, bytes.NewReader(data), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte of the third segment in the server's own file.
	path := filepath.Join(srv.Dir(), s3test.Bucket, "p", "blobs", b.Key)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[headerSize+streamHeaderSize+firstCipherSeg+segmentSize+100] ^= 1
	os.WriteFile(path, raw, 0o600)

	if _, err := readAll(t, st, b.Key); !errors.Is(err, ErrDamaged) {
		t.Errorf("whole read: %v, want ErrDamaged", err)
	}
	rc, err := st.OpenRange(ctx, b.Key, 0, firstPlainSeg+plainSeg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Errorf("a range before the damage: %v", err)
	}
	rc, err = st.OpenRange(ctx, b.Key, firstPlainSeg+plainSeg+10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrDamaged) {
		t.Errorf("a range in the damaged segment: %v, want ErrDamaged", err)
	}
}

func TestS3Sweep(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	st := newS3(t, srv, "p", NewKey())
	put := func(s string) string {
		b, err := st.Put(ctx, strings.NewReader(s), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		return b.Key
	}
	gone, kept := put("old and unnamed"), put("stored again")
	time.Sleep(1100 * time.Millisecond)
	cutoff := time.Now()
	time.Sleep(1100 * time.Millisecond)
	put("stored again") // touches it after the cutoff
	for _, c := range []struct {
		key     string
		removed bool
	}{{gone, true}, {kept, false}} {
		removed, err := st.RemoveUnused(ctx, c.key, cutoff)
		if err != nil || removed != c.removed {
			t.Errorf("RemoveUnused(%s) = %v, %v; want %v", c.key, removed, err, c.removed)
		}
	}
	if _, err := st.Open(ctx, gone); !errors.Is(err, casebook.ErrNotFound) {
		t.Errorf("removed blob: %v", err)
	}
	if _, err := st.Open(ctx, kept); err != nil {
		t.Errorf("kept blob: %v", err)
	}

	// A sweep that died after its gc marker: a Put of that blob waits, and Recover
	// settles the removal, after which the Put stores the blob again.
	again := put("swept under a Put")
	bk := st.Backend().(*S3)
	if err := bk.putSmall(ctx, bk.gc(again), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.Put(ctx, strings.NewReader("swept under a Put"), 1<<20)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the Put did not wait for the sweep: %v", err)
	default:
	}
	if err := st.Recover(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open(ctx, again); err != nil {
		t.Errorf("the blob a Put stored during a sweep is gone: %v", err)
	}
}

// TestS3ServerDownMidUpload kills the server while a multipart upload runs: the Put
// fails, nothing is visible, and the abandoned upload is aborted by the gc's Recover.
func TestS3ServerDownMidUpload(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	st := newS3(t, srv, "p")
	data := make([]byte, 60<<20)
	rand.Read(data)
	done := make(chan error, 1)
	go func() {
		_, err := st.Put(ctx, bytes.NewReader(data), 1<<30)
		done <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s3test.Bucket)})
		if err == nil && len(out.Uploads) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no multipart upload started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	srv.Kill()
	if err := <-done; err == nil {
		t.Fatal("Put succeeded with the server down")
	}
	srv.Restart()
	n := 0
	st.Walk(ctx, func(casebook.BlobInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d blobs visible after a failed Put", n)
	}
	out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s3test.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d uploads left open by the failed Put", len(out.Uploads))
	if aborted, err := st.Backend().(*S3).AbortStaleUploads(ctx, time.Now().Add(time.Minute)); err != nil || aborted != len(out.Uploads) {
		t.Errorf("AbortStaleUploads = %d, %v; want %d", aborted, err, len(out.Uploads))
	}
	out, _ = srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s3test.Bucket)})
	if len(out.Uploads) != 0 {
		t.Errorf("%d uploads still open", len(out.Uploads))
	}
	// And the store works again.
	if _, err := st.Put(ctx, bytes.NewReader(data[:1000]), 1<<30); err != nil {
		t.Errorf("Put after the restart: %v", err)
	}
}

func TestS3Refused(t *testing.T) {
	srv := s3test.Start(t)
	for _, c := range []struct {
		name   string
		mutate func(*S3Config)
		want   string
	}{
		{"wrong secret", func(c *S3Config) { c.SecretAccessKey = "wrong" }, "access denied"},
		{"wrong key id", func(c *S3Config) { c.AccessKeyID = "nobody" }, "access denied"},
		{"no such bucket", func(c *S3Config) { c.Bucket = "missing" }, "no such bucket"},
		{"no server", func(c *S3Config) { c.Endpoint = "http://127.0.0.1:1" }, "127.0.0.1:1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := ParseS3URL(srv.URL("p"))
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SpoolDir = s3test.AccessKey, s3test.SecretKey, t.TempDir()
			c.mutate(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := NewS3(ctx, cfg)
			if !errors.Is(err, ErrS3Access) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewS3 = %v, want ErrS3Access saying %q", err, c.want)
			}
		})
	}
}

func TestParseS3URL(t *testing.T) {
	for _, c := range []struct {
		url  string
		want S3Config
		ok   bool
	}{
		{"s3://b", S3Config{Bucket: "b"}, true},
		{"s3://b/some/prefix/?region=eu-west-1", S3Config{Bucket: "b", Prefix: "some/prefix/", Region: "eu-west-1"}, true},
		{"s3://b/p?endpoint=https://s3.example.com&region=us-east-1&path_style=true", S3Config{Bucket: "b", Prefix: "p/", Endpoint: "https://s3.example.com", Region: "us-east-1", PathStyle: true}, true},
		{"s3:///p", S3Config{}, false},
		{"s3://b?path_style=maybe", S3Config{}, false},
		{"s3://b?endpoint=s3.example.com", S3Config{}, false},
		{"s3://b?secret=x", S3Config{}, false},
		{"file:///x", S3Config{}, false},
	} {
		got, err := ParseS3URL(c.url)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseS3URL(%q) = %+v, %v", c.url, got, err)
		}
	}
}
