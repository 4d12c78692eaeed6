package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/casebookhq/casebook/casebook"
)

// S3 is the backend on an S3-compatible bucket (Amazon S3, MinIO, Ceph RGW, Versity).
//
// Objects live under PREFIX/blobs/. A Put is spooled to a local temporary file first
// (it is already encrypted there when the store has a key), because its name is known
// only once the whole content is hashed; then a HEAD tells whether the object exists,
// and only a new one is uploaded, from the file, in parts of PartSize with a SHA-256
// per part that the server checks (x-amz-checksum-sha256). Memory stays flat: the
// parts are read from the file, never held whole.
//
// S3 can neither rename nor touch an object, so the sweep's grace period works with
// two kinds of marker: a Put that finds its object already there writes an empty
// PREFIX/touch/NAME (its time is the blob's "stored again"), and the sweep writes
// PREFIX/gc/NAME before it rereads that time and deletes. A Put that then sees the gc
// marker waits until it is gone and looks again, so a blob an update names is never
// lost to a sweep (see RemoveUnused).
type S3 struct {
	cfg    S3Config
	client *s3.Client
}

var _ Backend = (*S3)(nil)

// S3Config says where an S3 backend keeps its objects and how it reaches them.
type S3Config struct {
	Bucket string
	// Prefix is prepended to every object name ("" or ending in "/").
	Prefix string
	// Endpoint is the server's URL; empty for Amazon S3 itself.
	Endpoint string
	// Region is the bucket's; empty leaves it to the AWS chain (AWS_REGION, profiles),
	// and then to us-east-1.
	Region string
	// PathStyle addresses the bucket in the path (most self-hosted servers) instead
	// of the host name.
	PathStyle bool
	// AccessKeyID, SecretAccessKey and SessionToken, when AccessKeyID is set, replace
	// the standard AWS chain (environment, profiles, instance roles).
	AccessKeyID, SecretAccessKey, SessionToken string
	// PartSize is the size of a multipart upload's parts; larger objects are uploaded
	// in parts. DefaultPartSize when zero; S3 wants at least 5 MiB.
	PartSize int64
	// SpoolDir holds Puts on their way to the bucket; os.TempDir()/casebook-spool
	// when empty.
	SpoolDir string
}

// DefaultPartSize is the part size of multipart uploads.
const DefaultPartSize = 8 << 20

// sweepWait is how long a Put waits for a sweep that is removing its object.
const sweepWait = 30 * time.Second

// ErrS3URL marks a malformed s3:// URL.
var ErrS3URL = errors.New("want s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=true")

// ParseS3URL reads s3://BUCKET/PREFIX?endpoint=…&region=…&path_style=true.
func ParseS3URL(raw string) (S3Config, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return S3Config{}, fmt.Errorf("%q: %w", raw, ErrS3URL)
	}
	q := u.Query()
	c := S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Endpoint: q.Get("endpoint"), Region: q.Get("region")}
	if c.Prefix != "" {
		c.Prefix += "/"
	}
	if v := q.Get("path_style"); v != "" {
		if c.PathStyle, err = strconv.ParseBool(v); err != nil {
			return S3Config{}, fmt.Errorf("%q: path_style: %w", raw, ErrS3URL)
		}
	}
	for k := range q {
		if k != "endpoint" && k != "region" && k != "path_style" {
			return S3Config{}, fmt.Errorf("%q: unknown parameter %q: %w", raw, k, ErrS3URL)
		}
	}
	if c.Endpoint != "" {
		if e, err := url.Parse(c.Endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return S3Config{}, fmt.Errorf("%q: endpoint must be an http(s) URL: %w", raw, ErrS3URL)
		}
	}
	return c, nil
}

// ErrS3Access marks a bucket the backend cannot use: wrong credentials, no such
// bucket, no permission, or no server at the endpoint.
var ErrS3Access = errors.New("cannot use the S3 bucket")

// NewS3 connects to the bucket and checks that it is there and the credentials are
// accepted, so that a wrong setting fails at start, not at the first upload.
func NewS3(ctx context.Context, c S3Config) (*S3, error) {
	if c.PartSize <= 0 {
		c.PartSize = DefaultPartSize
	}
	if c.SpoolDir == "" {
		c.SpoolDir = filepath.Join(os.TempDir(), "casebook-spool")
	}
	if err := os.MkdirAll(c.SpoolDir, 0o700); err != nil {
		return nil, fmt.Errorf("blob spool: %w", err)
	}
	if err := clearTemp(c.SpoolDir, StaleTemp, time.Now()); err != nil {
		return nil, fmt.Errorf("blob spool: %w", err)
	}
	var opts []func(*config.LoadOptions) error
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	ac, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 config: %w", err)
	}
	if ac.Region == "" {
		// Neither the URL nor the AWS chain names one; S3-compatible servers mostly
		// accept any, and Amazon S3 redirects to the bucket's own.
		ac.Region = "us-east-1"
	}
	client := s3.NewFromConfig(ac, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		// We send our own SHA-256 per request; the SDK's default CRC trailers are not
		// understood by every S3-compatible server.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	s := &S3{cfg: c, client: client}
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.Bucket)}); err != nil {
		// A HEAD answer has no body to say why; a listing's error names its cause.
		if _, lerr := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(c.Bucket), MaxKeys: aws.Int32(1)}); lerr != nil {
			err = lerr
		}
		return nil, fmt.Errorf("%w %s: %s", ErrS3Access, s, explainS3(err))
	}
	return s, nil
}

// explainS3 says what to fix for a failed request.
func explainS3(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		// XAdminUserNotFound is Versity's answer (a 404) to an unknown access key id.
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "ExpiredToken", "InvalidToken", "XAdminUserNotFound":
			return fmt.Sprintf("access denied (%s): check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or their _FILE) and the bucket's policy", ae.ErrorCode())
		case "NoSuchBucket":
			return "no such bucket: create it first"
		}
	}
	switch status(err) {
	case http.StatusForbidden, http.StatusUnauthorized:
		return "access denied: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or their _FILE) and the bucket's policy"
	case http.StatusNotFound:
		return "no such bucket: create it first"
	case http.StatusBadRequest:
		return fmt.Sprintf("bad request: check the region (%v)", err)
	}
	return err.Error()
}

// status is the HTTP status of a failed request, or 0.
func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// String names the bucket as a URL, without credentials.
func (s *S3) String() string {
	u := "s3://" + s.cfg.Bucket + "/" + s.cfg.Prefix
	if s.cfg.Endpoint != "" {
		u += "?endpoint=" + s.cfg.Endpoint
	}
	return u
}

func (s *S3) obj(name string) string   { return s.cfg.Prefix + "blobs/" + name }
func (s *S3) touch(name string) string { return s.cfg.Prefix + "touch/" + name }
func (s *S3) gc(name string) string    { return s.cfg.Prefix + "gc/" + name }

// Spool creates a temporary file in the spool directory.
func (s *S3) Spool() (*os.File, error) {
	return os.CreateTemp(s.cfg.SpoolDir, tempPrefix("put")+"*")
}

// Place uploads f as name unless name exists; an existing object is marked as stored
// again instead (see the type's comment), so a second Put of the same content
// uploads nothing.
func (s *S3) Place(ctx context.Context, f *os.File, name string) error {
	deadline := time.Now().Add(sweepWait)
	for {
		found, err := s.exists(ctx, s.obj(name))
		if err != nil {
			return err
		}
		if !found {
			err := s.upload(ctx, f, s.obj(name), true)
			if status(err) == http.StatusPreconditionFailed {
				continue // another instance stored it meanwhile
			}
			return err
		}
		if err := s.putSmall(ctx, s.touch(name), nil); err != nil {
			return err
		}
		sweeping, err := s.exists(ctx, s.gc(name))
		if err != nil || !sweeping {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("blob %s: a sweep has been removing it for %s", name, sweepWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exists reports whether the object key is there.
func (s *S3) exists(ctx context.Context, key string) (bool, error) {
	_, err := s.head(ctx, key)
	if errors.Is(err, casebook.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *S3) head(ctx context.Context, key string) (*s3.HeadObjectOutput, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if status(err) == http.StatusNotFound {
		return nil, fmt.Errorf("%s: %w", key, casebook.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 head %s: %w", key, err)
	}
	return out, nil
}

// upload writes the file f as key: one request up to PartSize, a multipart upload
// above it. With ifNew the server refuses to replace an existing object (412).
func (s *S3) upload(ctx context.Context, f *os.File, key string, ifNew bool) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	var cond *string
	if ifNew {
		cond = aws.String("*")
	}
	if size <= s.cfg.PartSize {
		body := io.NewSectionReader(f, 0, size)
		sum, err := sectionSHA256(body)
		if err != nil {
			return err
		}
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Body: body,
			ContentLength: aws.Int64(size), ChecksumSHA256: aws.String(sum), IfNoneMatch: cond,
		})
		if err != nil {
			return fmt.Errorf("s3 put %s: %w", key, err)
		}
		return nil
	}
	return s.multipart(ctx, f, key, size, cond)
}

func (s *S3) multipart(ctx context.Context, f *os.File, key string, size int64, cond *string) (err error) {
	bucket := aws.String(s.cfg.Bucket)
	mu, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: bucket, Key: aws.String(key), ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("s3 multipart %s: %w", key, err)
	}
	defer func() {
		if err == nil {
			return
		}
		// Not left for the gc: an abandoned upload holds storage until aborted. The
		// request's own context may be what ended.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String(key), UploadId: mu.UploadId})
	}()
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+s.cfg.PartSize, n+1 {
		body := io.NewSectionReader(f, off, min(s.cfg.PartSize, size-off))
		sum, err := sectionSHA256(body)
		if err != nil {
			return err
		}
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: bucket, Key: aws.String(key), UploadId: mu.UploadId, PartNumber: aws.Int32(n),
			Body: body, ContentLength: aws.Int64(body.Size()), ChecksumSHA256: aws.String(sum),
		})
		if err != nil {
			return fmt.Errorf("s3 multipart %s: part %d: %w", key, n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n), ChecksumSHA256: aws.String(sum)})
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: bucket, Key: aws.String(key), UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, IfNoneMatch: cond,
	})
	if err != nil {
		return fmt.Errorf("s3 multipart %s: complete: %w", key, err)
	}
	return nil
}

// sectionSHA256 is the base64 SHA-256 of r, which it leaves at its start.
func sectionSHA256(r *io.SectionReader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// putSmall writes a small object from memory.
func (s *S3) putSmall(ctx context.Context, key string, b []byte) error {
	sum := sha256.Sum256(b)
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), Body: bytes.NewReader(b),
		ContentLength: aws.Int64(int64(len(b))), ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return fmt.Errorf("s3 put %s: %w", key, err)
	}
	return nil
}

// Size returns the object's size.
func (s *S3) Size(ctx context.Context, name string) (int64, error) {
	out, err := s.head(ctx, s.obj(name))
	if err != nil {
		return 0, fmt.Errorf("blob %w", err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Open reads n bytes of the object from off (to its end when n < 0) with a ranged GET.
func (s *S3) Open(ctx context.Context, name string, off, n int64) (io.ReadCloser, error) {
	return s.get(ctx, s.obj(name), off, n)
}

func (s *S3) get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if n == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	switch {
	case n > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", off))
	}
	out, err := s.client.GetObject(ctx, in)
	if status(err) == http.StatusNotFound {
		return nil, fmt.Errorf("blob %s: %w", key, casebook.ErrNotFound)
	}
	if status(err) == http.StatusRequestedRangeNotSatisfiable {
		if off == 0 {
			// Any range of an empty object is unsatisfiable: its start is its end.
			return io.NopCloser(eofReader{}), nil
		}
		return nil, fmt.Errorf("blob %s: %w", key, ErrRange)
	}
	if err != nil {
		return nil, fmt.Errorf("s3 get %s: %w", key, err)
	}
	return out.Body, nil
}

// Patch rewrites the object with the patches applied: S3 cannot write in place, but
// it replaces an object atomically, so readers see it whole before or after.
func (s *S3) Patch(ctx context.Context, name string, patches []Patch) error {
	rc, err := s.Open(ctx, name, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := s.Spool()
	if err != nil {
		return err
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	if _, err := io.Copy(tmp, rc); err != nil {
		return fmt.Errorf("blob %s: %w", name, err)
	}
	for _, p := range patches {
		if _, err := tmp.WriteAt(p.Data, p.Off); err != nil {
			return err
		}
	}
	return s.upload(ctx, tmp, s.obj(name), false)
}

// ReadMeta reads PREFIX/name.
func (s *S3) ReadMeta(ctx context.Context, name string) ([]byte, error) {
	rc, err := s.get(ctx, s.cfg.Prefix+name, 0, -1)
	if errors.Is(err, casebook.ErrNotFound) {
		return nil, fs.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 1<<20))
}

// WriteMeta replaces PREFIX/name.
func (s *S3) WriteMeta(ctx context.Context, name string, b []byte) error {
	return s.putSmall(ctx, s.cfg.Prefix+name, b)
}

func (s *S3) delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil && status(err) != http.StatusNotFound {
		return fmt.Errorf("s3 delete %s: %w", key, err)
	}
	return nil
}
