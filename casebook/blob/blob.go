// Package blob keeps attachment contents in a directory, one file per distinct
// content.
//
// A file is written to a temporary name, hashed while it streams, fsynced, and renamed
// to its name, then the directory is fsynced: a crash mid-write leaves only a
// temporary file (removed at next start), never a visible partial blob. Blobs are
// never removed on the write path: a blob no row names is left for Sweep, which
// removes it only after a grace period (see RemoveUnused).
//
// With a key, each blob is encrypted under its own data key (crypt.go) and named by
// an HMAC of its content under a key derived from the master key, so neither the
// bytes nor the name reveal the content. Without one, blobs are plaintext named by
// their SHA-256; both kinds are read back alike, told apart by the encrypted format's
// magic.
package blob

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gabriel-vasile/mimetype"

	"casebook/casebook"
)

// sniffLen is how much of a file mimetype needs to see to tell most types apart.
const sniffLen = 3072

// Dir is a blob store in a directory.
type Dir struct {
	root string
	// key encrypts new blobs; nil stores them in plaintext.
	key *Key
	// keys open encrypted blobs: key first, then any others (during a rotation).
	keys []*Key
}

var _ casebook.Blobs = (*Dir)(nil)

// Open prepares root for use, creating it when missing and clearing temporary files
// left by a crash. The first of keys, when given, encrypts new blobs; all of them
// open existing ones. A store whose blobs are under another key, or that holds
// encrypted blobs while no key is given, is refused (ErrWrongKey, ErrKeyMissing).
func Open(root string, keys ...*Key) (*Dir, error) {
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
	d := &Dir{root: root}
	for _, k := range keys {
		if k != nil {
			d.keys = append(d.keys, k)
		}
	}
	if len(d.keys) > 0 {
		d.key = d.keys[0]
	}
	if err := d.checkKey(); err != nil {
		return nil, err
	}
	return d, nil
}

// Root returns the directory.
func (d *Dir) Root() string { return d.root }

// Encrypting reports whether new blobs are encrypted.
func (d *Dir) Encrypting() bool { return d.key != nil }

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

	sum := sha256.New()
	name := sum
	var dst io.Writer = tmp
	var enc io.WriteCloser
	if d.key != nil {
		name = hmac.New(sha256.New, d.key.name)
		if enc, err = encryptTo(tmp, d.key); err != nil {
			return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
		}
		dst = enc
	}
	head := &prefixBuffer{max: sniffLen}
	n, err := io.Copy(multiWriter(dst, sum, name, head), &ctxReader{ctx: ctx, r: io.LimitReader(r, limit+1)})
	if err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	if n > limit {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w (%d bytes)", casebook.ErrTooLarge, limit)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	b := casebook.StoredBlob{Key: hex.EncodeToString(name.Sum(nil)), SHA256: hex.EncodeToString(sum.Sum(nil)), Size: n, ContentType: sniff(head.buf)}
	if err := d.place(tmp.Name(), b.Key); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	return b, nil
}

// place renames the file at tmp to name, unless name exists. An existing blob has its
// modification time set to now instead: the sweep removes only blobs untouched for
// the grace period, so a blob an update is about to name again is safe from it even
// if no row names it yet.
func (d *Dir) place(tmp, name string) error {
	final := d.path(name)
	now := time.Now()
	err := os.Chtimes(final, now, now)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

// Open returns a blob's contents, decrypted when the blob is encrypted. A damaged
// encrypted blob fails with ErrDamaged: at once for a bad header or length, or from
// Read at the first segment that does not authenticate.
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
	enc, err := isEncrypted(f)
	if err != nil || !enc {
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("blob %s: %w", key, err)
		}
		return f, nil
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	h, err := readHeader(f)
	if err == nil && !streamSizeOK(st.Size()-int64(headerSize)) {
		err = fmt.Errorf("%w: truncated (%d bytes)", ErrDamaged, st.Size())
	}
	var r io.Reader
	if err == nil {
		r, err = decryptFrom(f, h, d.keys)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	return readCloser{Reader: r, Closer: f}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// isEncrypted reads the magic at the start of f and leaves f at its start.
func isEncrypted(f *os.File) (bool, error) {
	b := make([]byte, len(magic))
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	return string(b[:n]) == magic, nil
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

// multiWriter is io.MultiWriter without repeats: a plaintext blob's name is its
// SHA-256, and one hash must not see the bytes twice.
func multiWriter(ws ...io.Writer) io.Writer {
	var uniq []io.Writer
	for _, w := range ws {
		seen := false
		for _, u := range uniq {
			seen = seen || u == w
		}
		if !seen {
			uniq = append(uniq, w)
		}
	}
	return io.MultiWriter(uniq...)
}
