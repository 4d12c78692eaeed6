// Package blob keeps attachment contents in a directory, addressed by SHA-256.
//
// A file is written to a temporary name, hashed while it streams, fsynced, and renamed
// to its content address, then the directory is fsynced: a crash mid-write leaves
// only a temporary file (removed at next start), never a visible partial blob.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gabriel-vasile/mimetype"

	"casebook/casebook"
)

// sniffLen is how much of a file mimetype needs to see to tell most types apart.
const sniffLen = 3072

// Dir is a content-addressed blob store in a directory.
type Dir struct {
	root string
}

var _ casebook.Blobs = (*Dir)(nil)

// Open prepares root for use, creating it when missing and clearing temporary files
// left by a crash.
func Open(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("blob store %s: %w", root, err)
	}
	tmps, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", root, err)
	}
	for _, t := range tmps {
		os.Remove(filepath.Join(root, "tmp", t.Name()))
	}
	return &Dir{root: root}, nil
}

// Root returns the directory.
func (d *Dir) Root() string { return d.root }

// Put streams r into the store. More than limit bytes is casebook.ErrTooLarge and
// stores nothing. Memory use is constant whatever the size.
func (d *Dir) Put(ctx context.Context, r io.Reader, limit int64) (casebook.StoredBlob, error) {
	tmp, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "put-*")
	if err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()

	h := sha256.New()
	head := &prefixBuffer{max: sniffLen}
	n, err := io.Copy(io.MultiWriter(tmp, h, head), &ctxReader{ctx: ctx, r: io.LimitReader(r, limit+1)})
	if err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	if n > limit {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w (%d bytes)", casebook.ErrTooLarge, limit)
	}
	if err := tmp.Sync(); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	b := casebook.StoredBlob{Key: sum, SHA256: sum, Size: n, ContentType: sniff(head.buf)}
	final := d.path(sum)
	if _, err := os.Stat(final); err == nil {
		return b, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	b.Created = true
	return b, nil
}

// Open returns a blob's contents.
func (d *Dir) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", key, casebook.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	return f, nil
}

// Remove deletes a blob; a missing blob is not an error.
func (d *Dir) Remove(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("blob %q: %w", key, casebook.ErrInvalidInput)
	}
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob remove %s: %w", key, err)
	}
	return nil
}

// path fans blobs out over 256 directories so no directory grows huge.
func (d *Dir) path(key string) string {
	return filepath.Join(d.root, key[:2], key)
}

func validKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	return strings.Trim(key, "0123456789abcdef") == ""
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// sniff names the type from the first bytes; the declared type is never trusted.
func sniff(head []byte) string {
	return mimetype.Detect(head).String()
}

// prefixBuffer keeps the first max bytes written to it.
type prefixBuffer struct {
	buf []byte
	max int
}

func (p *prefixBuffer) Write(b []byte) (int, error) {
	if room := p.max - len(p.buf); room > 0 {
		p.buf = append(p.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
