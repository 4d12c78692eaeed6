package blob

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/casebookhq/casebook/casebook"
)

// Tink's AES-GCM-HKDF stream, as crypt.go writes it: a header (its length, a salt, a
// nonce prefix), then segments of segmentSize bytes of ciphertext, the first shorter
// by the header, each with a 16-byte tag and sealed under the nonce
// prefix || segment number (big-endian uint32) || last-segment flag, with an AES key
// derived by HKDF-SHA256 from the data key, the salt and the associated data. Reading
// a range decrypts only the segments it touches, each authenticated on its own.
const (
	streamHeaderSize = 1 + dataKeySize + noncePrefixSize
	noncePrefixSize  = 7
	tagSize          = 16
	firstCipherSeg   = segmentSize - streamHeaderSize
	firstPlainSeg    = firstCipherSeg - tagSize
	plainSeg         = segmentSize - tagSize
)

// ErrRange marks a range that is not within the blob.
var ErrRange = fmt.Errorf("%w: range outside the blob", casebook.ErrInvalidInput)

// OpenRange returns n bytes of a blob's content from off. For an encrypted blob it
// reads and decrypts only the 64 KiB segments the range touches: each is
// authenticated, so a damaged one fails with ErrDamaged, but the whole content's
// SHA-256 cannot be checked on a part of it.
func (s *Store) OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	if !validKey(key) {
		return nil, fmt.Errorf("blob %q: %w", key, casebook.ErrNotFound)
	}
	if off < 0 || n < 0 {
		return nil, ErrRange
	}
	size, err := s.b.Size(ctx, key)
	if err != nil {
		return nil, err
	}
	plain, err := s.Plaintext(ctx, key)
	if err != nil {
		return nil, err
	}
	if plain {
		if off+n > size {
			return nil, ErrRange
		}
		if n == 0 {
			return io.NopCloser(eofReader{}), nil
		}
		return s.b.Open(ctx, key, off, n)
	}
	g, err := s.openStream(ctx, key, size)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", key, err)
	}
	if off+n > g.plainSize() {
		return nil, ErrRange
	}
	if n == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	first, last := segmentOf(off), segmentOf(off+n-1)
	from, to := g.cipherStart(first), g.cipherStart(last+1)
	rc, err := s.b.Open(ctx, key, int64(headerSize+streamHeaderSize)+from, to-from)
	if err != nil {
		return nil, err
	}
	return &rangeReader{g: g, r: rc, seg: first, skip: off - plainStart(first), left: n}, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// stream is an encrypted blob's stream geometry and cipher.
type stream struct {
	aead        cipher.AEAD
	noncePrefix []byte
	// length is the stream's ciphertext after its header; segments how many it has.
	length   int64
	segments int64
}

// openStream reads an encrypted blob's headers and prepares to decrypt its segments.
func (s *Store) openStream(ctx context.Context, key string, size int64) (*stream, error) {
	if !streamSizeOK(size - int64(headerSize)) {
		return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrDamaged, size)
	}
	f, err := s.b.Open(ctx, key, 0, int64(headerSize+streamHeaderSize))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := readHeader(f)
	if err != nil {
		return nil, err
	}
	dk, err := h.dataKey(s.keys)
	if err != nil {
		return nil, err
	}
	sh := make([]byte, streamHeaderSize)
	if _, err := io.ReadFull(f, sh); err != nil {
		return nil, fmt.Errorf("%w: short stream header", ErrDamaged)
	}
	if sh[0] != streamHeaderSize {
		return nil, fmt.Errorf("%w: bad stream header", ErrDamaged)
	}
	k, err := hkdf.Key(sha256.New, dk, sh[1:1+dataKeySize], string(streamAAD), dataKeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	g := &stream{aead: aead, noncePrefix: sh[1+dataKeySize:], length: size - int64(headerSize+streamHeaderSize)}
	g.segments = 1
	if g.length > firstCipherSeg {
		g.segments += (g.length - firstCipherSeg + segmentSize - 1) / segmentSize
	}
	return g, nil
}

func (g *stream) plainSize() int64 { return g.length - g.segments*tagSize }

// cipherStart is where segment i starts in the stream after its header (its end,
// for the segment after the last).
func (g *stream) cipherStart(i int64) int64 {
	if i == 0 {
		return 0
	}
	return min(g.length, firstCipherSeg+(i-1)*segmentSize)
}

func segmentOf(off int64) int64 {
	if off < firstPlainSeg {
		return 0
	}
	return 1 + (off-firstPlainSeg)/plainSeg
}

func plainStart(i int64) int64 {
	if i == 0 {
		return 0
	}
	return firstPlainSeg + (i-1)*plainSeg
}

// rangeReader decrypts segment after segment and hands on the range's part of them.
type rangeReader struct {
	g    *stream
	r    io.ReadCloser
	seg  int64
	skip int64
	left int64
	ct   []byte
	pt   []byte
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	for len(r.pt) == 0 {
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.pt[:min(int64(len(r.pt)), r.left)])
	r.pt = r.pt[n:]
	r.left -= int64(n)
	return n, nil
}

// next decrypts the next segment into r.pt, less what the range skips.
func (r *rangeReader) next() error {
	n := r.g.cipherStart(r.seg+1) - r.g.cipherStart(r.seg)
	if cap(r.ct) < int(n) {
		r.ct = make([]byte, segmentSize)
	}
	ct := r.ct[:n]
	if _, err := io.ReadFull(r.r, ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: segment %d is short", ErrDamaged, r.seg)
		}
		return err
	}
	nonce := binary.BigEndian.AppendUint32(append([]byte(nil), r.g.noncePrefix...), uint32(r.seg))
	last := byte(0)
	if r.seg == r.g.segments-1 {
		last = 1
	}
	pt, err := r.g.aead.Open(ct[:0], append(nonce, last), ct, nil)
	if err != nil {
		return fmt.Errorf("%w: segment %d does not authenticate", ErrDamaged, r.seg)
	}
	r.pt = pt[min(r.skip, int64(len(pt))):]
	r.skip = 0
	r.seg++
	return nil
}

func (r *rangeReader) Close() error { return r.r.Close() }
