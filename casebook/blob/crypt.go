package blob

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tink-crypto/tink-go/v2/streamingaead/subtle"
	"golang.org/x/crypto/chacha20poly1305"
)

// An encrypted blob is
//
//	magic (8 bytes) | slot 0 (88) | slot 1 (88) | Tink AES-GCM-HKDF stream
//
// The stream is Tink's reviewed streaming AEAD (segments of 64 KiB, each sealed with
// its index and a last-segment flag, so truncation, reordering and tampering all fail
// to decrypt) under a random data key of the blob's own. The data key is wrapped by
// the master key in a slot:
//
//	generation (4) | key id (8) | nonce (24) | XChaCha20-Poly1305(data key) (48) | CRC-32 (4)
//
// Two slots let rotation re-wrap the data key in place without touching the content:
// the new wrapping goes into the slot not in use, fsynced, so a crash mid-write tears
// at most the slot being written while the other still opens the blob. The CRC only
// tells a torn slot from an empty one; the AEAD is what authenticates.
const (
	magic         = "CBBLOB1\n"
	slotSize      = 4 + 8 + 24 + 32 + 16 + 4
	headerSize    = len(magic) + 2*slotSize
	segmentSize   = 64 << 10
	dataKeySize   = 32
	streamHKDFAlg = "SHA256"
)

// ErrDamaged marks a blob that cannot be read back whole: a torn or altered header,
// or content that fails authentication (tampered, truncated).
var ErrDamaged = errors.New("blob is damaged")

// ErrNoKey marks an encrypted blob read without a key that opens it.
var ErrNoKey = errors.New("blob is encrypted under a key that is not configured")

// streamAAD binds the stream to the format, so a stream cannot be read as another.
var streamAAD = []byte(magic)

type slot struct {
	gen     uint32
	keyID   string
	wrapped []byte // nonce and sealed data key
}

func (s slot) empty() bool { return s.keyID == "" }

func (s slot) encode() []byte {
	b := make([]byte, slotSize)
	if s.empty() {
		return b
	}
	binary.BigEndian.PutUint32(b[0:4], s.gen)
	id, _ := hex.DecodeString(s.keyID)
	copy(b[4:12], id)
	copy(b[12:slotSize-4], s.wrapped)
	binary.BigEndian.PutUint32(b[slotSize-4:], crc32.ChecksumIEEE(b[:slotSize-4]))
	return b
}

func decodeSlot(b []byte) slot {
	if binary.BigEndian.Uint32(b[slotSize-4:]) != crc32.ChecksumIEEE(b[:slotSize-4]) {
		return slot{}
	}
	return slot{gen: binary.BigEndian.Uint32(b[0:4]), keyID: hex.EncodeToString(b[4:12]), wrapped: bytes.Clone(b[12 : slotSize-4])}
}

func slotAAD(keyID string, gen uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte(magic+keyID), gen)
}

// wrapKey seals a data key under k in a slot of generation gen.
func wrapKey(k *Key, dataKey []byte, gen uint32) slot {
	aead, err := chacha20poly1305.NewX(k.wrap)
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	nonce := randomBytes(aead.NonceSize())
	return slot{gen: gen, keyID: k.id, wrapped: aead.Seal(nonce, nonce, dataKey, slotAAD(k.id, gen))}
}

// unwrapKey opens a slot with k.
func unwrapKey(k *Key, s slot) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.wrap)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	dk, err := aead.Open(nil, s.wrapped[:n], s.wrapped[n:], slotAAD(k.id, s.gen))
	if err != nil {
		return nil, fmt.Errorf("%w: data key does not open under key %s", ErrDamaged, k.id)
	}
	return dk, nil
}

// header is an encrypted blob's two slots.
type header [2]slot

func readHeader(r io.Reader) (header, error) {
	b := make([]byte, headerSize)
	if _, err := io.ReadFull(r, b); err != nil {
		return header{}, fmt.Errorf("%w: short header", ErrDamaged)
	}
	if string(b[:len(magic)]) != magic {
		return header{}, fmt.Errorf("%w: not an encrypted blob", ErrDamaged)
	}
	return header{decodeSlot(b[len(magic) : len(magic)+slotSize]), decodeSlot(b[len(magic)+slotSize:])}, nil
}

func (h header) encode() []byte {
	return append(append([]byte(magic), h[0].encode()...), h[1].encode()...)
}

// dataKey opens the newest slot that one of keys opens.
func (h header) dataKey(keys []*Key) ([]byte, error) {
	order := []int{0, 1}
	if h[1].gen > h[0].gen {
		order = []int{1, 0}
	}
	var ids []string
	for _, i := range order {
		if h[i].empty() {
			continue
		}
		ids = append(ids, h[i].keyID)
		for _, k := range keys {
			if k.id == h[i].keyID {
				return unwrapKey(k, h[i])
			}
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no readable key slot", ErrDamaged)
	}
	return nil, fmt.Errorf("%w (key ids %v)", ErrNoKey, ids)
}

// find returns the index of the slot under key id, or -1.
func (h header) find(id string) int {
	for i, s := range h {
		if !s.empty() && s.keyID == id {
			return i
		}
	}
	return -1
}

func streamCipher(dataKey []byte) (*subtle.AESGCMHKDF, error) {
	return subtle.NewAESGCMHKDF(dataKey, streamHKDFAlg, dataKeySize, segmentSize, 0)
}

// encryptTo writes the header for a fresh data key under k to w and returns a writer
// that encrypts into w; closing it writes the last segment.
func encryptTo(w io.Writer, k *Key) (io.WriteCloser, error) {
	dk := randomBytes(dataKeySize)
	h := header{wrapKey(k, dk, 1)}
	if _, err := w.Write(h.encode()); err != nil {
		return nil, err
	}
	c, err := streamCipher(dk)
	if err != nil {
		return nil, err
	}
	return c.NewEncryptingWriter(w, streamAAD)
}

// decryptingReader opens the stream after the header. Every failure of the AEAD is
// ErrDamaged, so callers tell a bad blob from a bad disk by errors.Is.
type decryptingReader struct {
	r io.Reader
}

func (d decryptingReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		var ie ioError
		if errors.As(err, &ie) {
			err = ie.err
		} else {
			err = fmt.Errorf("%w: %v", ErrDamaged, err)
		}
	}
	return n, err
}

// ioError marks a failure to read the stored bytes (a disk, a network), which says
// nothing about the blob being damaged.
type ioError struct{ err error }

func (e ioError) Error() string { return e.err.Error() }

// ioErrorReader marks its reader's failures as ioError, keeping io.EOF as it is.
type ioErrorReader struct{ r io.Reader }

func (r ioErrorReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		err = ioError{err}
	}
	return n, err
}

// streamSizeOK checks the length of the stream after the header against Tink's
// framing (a 40-byte stream header, full segments, a last segment of at least its
// 16-byte tag). Tink's reader takes a stream that ends one byte into a segment, or
// right after its own header, for a clean end: this check is what refuses those
// truncations.
func streamSizeOK(n int64) bool {
	const streamHeader, tag = 1 + dataKeySize + 7, 16
	body := n - streamHeader
	return body >= tag && (body%segmentSize == 0 || body%segmentSize >= tag)
}

func decryptFrom(r io.Reader, h header, keys []*Key) (io.Reader, error) {
	dk, err := h.dataKey(keys)
	if err != nil {
		return nil, err
	}
	c, err := streamCipher(dk)
	if err != nil {
		return nil, err
	}
	dr, err := c.NewDecryptingReader(ioErrorReader{r}, streamAAD)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return decryptingReader{dr}, nil
}
