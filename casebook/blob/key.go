package blob

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the length of a master key: 32 random bytes.
const KeySize = 32

// ErrBadKey marks a key file that does not hold a usable key.
var ErrBadKey = errors.New("blob key must be 32 random bytes, raw or base64 (make one with: head -c 32 /dev/urandom | base64)")

// Key is a master key. Nothing is encrypted with it directly: each use gets its own
// key derived with HKDF-SHA256, so that wrapping data keys, naming blobs and sealing
// outbox secrets never share key material.
type Key struct {
	id     string
	wrap   []byte // wraps each blob's data key (XChaCha20-Poly1305)
	name   []byte // HMAC-SHA256 key that names blobs
	secret []byte // seals short secrets such as a queued temporary password
}

// ReadKeyFile reads a master key from path: 32 raw bytes, or their standard base64
// (with or without a trailing newline).
func ReadKeyFile(path string) (*Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("blob key %s: %w", path, err)
	}
	k, err := ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("blob key %s: %w", path, err)
	}
	return k, nil
}

// ParseKey reads a master key from its raw or base64 form.
func ParseKey(b []byte) (*Key, error) {
	raw := b
	if len(raw) != KeySize {
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(dec) != KeySize {
			return nil, ErrBadKey
		}
		raw = dec
	}
	if bytes.Count(raw, raw[:1]) == KeySize {
		// A file of one repeated byte is a placeholder, not a random key.
		return nil, ErrBadKey
	}
	derive := func(info string) []byte {
		k, err := hkdf.Key(sha256.New, raw, nil, "casebook "+info, 32)
		if err != nil {
			panic(err) // only for lengths hkdf cannot produce
		}
		return k
	}
	return &Key{
		id:     hex.EncodeToString(derive("key id")[:8]),
		wrap:   derive("blob data key wrap"),
		name:   derive("blob name"),
		secret: derive("outbox secret"),
	}, nil
}

// NewKey returns a fresh random key (tests, and the demo's throwaway store).
func NewKey() *Key {
	k, err := ParseKey(randomBytes(KeySize))
	if err != nil {
		// 32 equal random bytes: not in this universe.
		panic(err)
	}
	return k
}

// ID names the key without revealing it: the first 8 bytes of a derived value, in
// hex. It is stored beside everything the key protects, so that rotation can tell
// which key a blob or a secret is under.
func (k *Key) ID() string { return k.id }

// Equal reports whether k and o are the same key.
func (k *Key) Equal(o *Key) bool {
	return k != nil && o != nil && subtle.ConstantTimeCompare(k.wrap, o.wrap) == 1
}

// secretPrefix starts a sealed secret, so a reader tells it from a plaintext value.
const secretPrefix = "cbsec1."

// SealSecret encrypts a short secret for a database column:
// "cbsec1.<key id>.<base64 of nonce and ciphertext>". aad binds it to its place (the
// column and kind of row), so it cannot be copied to another.
func (k *Key) SealSecret(plaintext, aad string) string {
	aead, err := chacha20poly1305.NewX(k.secret)
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	nonce := randomBytes(aead.NonceSize())
	ct := aead.Seal(nonce, nonce, []byte(plaintext), []byte(k.id+"\x00"+aad))
	return secretPrefix + k.id + "." + base64.RawStdEncoding.EncodeToString(ct)
}

// ErrNotSealedFor marks a sealed secret under another key.
var ErrNotSealedFor = errors.New("secret is sealed under another key")

// OpenSecret decrypts what SealSecret returned.
func (k *Key) OpenSecret(sealed, aad string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, secretPrefix)
	id, b64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", errors.New("open secret: not a sealed secret")
	}
	if id != k.id {
		return "", fmt.Errorf("open secret: %w %s", ErrNotSealedFor, id)
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	aead, aerr := chacha20poly1305.NewX(k.secret)
	if err != nil || aerr != nil || len(ct) < aead.NonceSize() {
		return "", errors.New("open secret: malformed")
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(k.id+"\x00"+aad))
	if err != nil {
		return "", fmt.Errorf("open secret: %w", err)
	}
	return string(pt), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
