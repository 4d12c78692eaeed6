// Package blob keeps attachment contents, one object per distinct content, on a
// Backend: a directory (Dir) or an S3-compatible bucket (S3).
//
// The Store is the one layer every backend shares: it hashes while it streams, sniffs
// the type, and with a key encrypts each blob under its own data key (crypt.go) and
// names it by an HMAC of its content under a key derived from the master key, so
// neither the bytes nor the name reveal the content. Without one, blobs are plaintext
// named by their SHA-256; both kinds are read back alike, told apart by the encrypted
// format's magic. Blobs are never removed on the write path: a blob no row names is
// left for the sweep, which removes it only after a grace period (RemoveUnused).
package blob

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/gabriel-vasile/mimetype"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/failpoint"
)

// sniffLen is how much of a file mimetype needs to see to tell most types apart.
const sniffLen = 3072

// spoolBuffer is how much Put gathers before it writes to the spool file.
const spoolBuffer = 64 << 10

// putBuffers are what a Put writes through, reused between Puts: at hundreds of
// Puts a second, new ones each time are most of what the collector has to do.
type putBuffers struct {
	// w gathers writes for the spool file: readers often hand over a few hundred
	// bytes at a time (a base64 decoder gives about 750), and written straight
	// through, that is a system call for each.
	w *bufio.Writer
	// copy carries the bytes from the reader to the writers.
	copy []byte
}

var putPool = sync.Pool{New: func() any {
	return &putBuffers{w: bufio.NewWriterSize(nil, spoolBuffer), copy: make([]byte, 32<<10)}
}}

// Store is a blob store over a backend.
type Store struct {
	b Backend
	// key encrypts new blobs; nil stores them in plaintext.
	key *Key
	// keys open encrypted blobs: key first, then any others (during a rotation).
	keys []*Key
}

var _ casebook.Blobs = (*Store)(nil)

// Open opens the store in the directory root (see New).
func Open(root string, keys ...*Key) (*Store, error) {
	d, err := NewDir(root)
	if err != nil {
		return nil, err
	}
	// A directory answers at once; there is no request to end early.
	return New(context.Background(), d, keys...)
}

// New opens the store on b. The first of keys, when given, encrypts new blobs; all of
// them open existing ones. A store whose blobs are under another key, or that holds
// encrypted blobs while no key is given, is refused (ErrWrongKey, ErrKeyMissing).
func New(ctx context.Context, b Backend, keys ...*Key) (*Store, error) {
	s := &Store{b: b}
	for _, k := range keys {
		if k != nil {
			s.keys = append(s.keys, k)
		}
	}
	if len(s.keys) > 0 {
		s.key = s.keys[0]
	}
	if err := s.checkKey(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Backend returns the backend the store keeps its objects on.
func (s *Store) Backend() Backend { return s.b }

// String names the backend.
func (s *Store) String() string { return s.b.String() }

// Encrypting reports whether new blobs are encrypted.
func (s *Store) Encrypting() bool { return s.key != nil }

// Put streams r into the store. More than limit bytes is casebook.ErrTooLarge and
// stores nothing. Memory use is constant whatever the size: the content (encrypted,
// when there is a key) is spooled to a temporary file while it is hashed, since its
// name is known only at its end, and then placed on the backend.
func (s *Store) Put(ctx context.Context, r io.Reader, limit int64) (casebook.StoredBlob, error) {
	tmp, err := s.b.Spool()
	if err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	placed := false
	defer func() {
		tmp.Close()
		if placed {
			// The directory backend renamed it into place: removing a name that is
			// gone would still take the spool directory's lock, which every Put in
			// flight contends for.
			if _, err := os.Lstat(tmp.Name()); errors.Is(err, fs.ErrNotExist) {
				return
			}
		}
		os.Remove(tmp.Name())
	}()

	sum := sha256.New()
	name := sum
	bufs := putPool.Get().(*putBuffers)
	defer putPool.Put(bufs)
	buf := bufs.w
	buf.Reset(tmp)
	defer buf.Reset(nil)
	var dst io.Writer = buf
	var enc io.WriteCloser
	if s.key != nil {
		name = hmac.New(sha256.New, s.key.name)
		if enc, err = encryptTo(buf, s.key); err != nil {
			return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
		}
		dst = enc
	}
	head := &prefixBuffer{max: sniffLen}
	n, err := io.CopyBuffer(multiWriter(dst, sum, name, head), &ctxReader{ctx: ctx, r: io.LimitReader(r, limit+1)}, bufs.copy)
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
	if err := buf.Flush(); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	b := casebook.StoredBlob{Key: hex.EncodeToString(name.Sum(nil)), SHA256: hex.EncodeToString(sum.Sum(nil)), Size: n, ContentType: sniff(head.buf)}
	failpoint.Reached("blob.spooled")
	if err := s.b.Place(ctx, tmp, b.Key); err != nil {
		return casebook.StoredBlob{}, fmt.Errorf("blob put: %w", err)
	}
	placed = true
	return b, nil
}

// Open returns a blob's contents, decrypted when the blob is encrypted. A damaged
// encrypted blob fails with ErrDamaged: at once for a bad header or length, or from
// Read at the first segment that does not authenticate.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	size, err := s.b.Size(ctx, key)
	if err != nil {
		return nil, err
	}
	f, err := s.b.Open(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	br := &peekReader{r: f}
	if !br.startsWith(magic) {
		if br.err != nil {
			f.Close()
			return nil, fmt.Errorf("blob %s: %w", key, br.err)
		}
		if sk, ok := f.(io.Seeker); ok {
			// Hand back the file itself, which can seek (a raw message is read twice).
			if _, err := sk.Seek(0, io.SeekStart); err != nil {
				f.Close()
				return nil, fmt.Errorf("blob %s: %w", key, err)
			}
			return f, nil
		}
		return readCloser{Reader: br, Closer: f}, nil
	}
	h, err := readHeader(br)
	if err == nil && !streamSizeOK(size-int64(headerSize)) {
		err = fmt.Errorf("%w: truncated (%d bytes)", ErrDamaged, size)
	}
	var r io.Reader
	if err == nil {
		r, err = decryptFrom(br, h, s.keys)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	return readCloser{Reader: r, Closer: f}, nil
}

// peekReader reads the first bytes of a stream to look at them, then hands them on.
type peekReader struct {
	r    io.Reader
	head []byte
	err  error
}

// startsWith reports whether the stream starts with prefix; a read error other than
// a short stream is kept in p.err.
func (p *peekReader) startsWith(prefix string) bool {
	b := make([]byte, len(prefix))
	n, err := io.ReadFull(p.r, b)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		p.err = err
	}
	p.head = b[:n]
	return string(p.head) == prefix
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
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
