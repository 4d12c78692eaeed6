// Package password hashes passwords with Argon2id (RFC 9106) into PHC strings.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams are OWASP's minimum for Argon2id: m = 19 MiB, t = 2, p = 1.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// ErrMismatch reports a wrong password.
var ErrMismatch = errors.New("password does not match")

// Hasher hashes and verifies passwords, running at most a fixed number of hashes at
// once: each takes 19 MiB, and a login flood must not exhaust memory.
type Hasher struct {
	params Params
	sem    chan struct{}
	hashes atomic.Uint64
}

// NewHasher returns a Hasher with p that runs at most concurrent hashes at a time.
func NewHasher(p Params, concurrent int) *Hasher {
	if concurrent <= 0 {
		concurrent = 4
	}
	return &Hasher{params: p, sem: make(chan struct{}, concurrent)}
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hashes counts the Argon2id computations so far: a login must cost exactly one
// whatever its outcome, and tests and metrics check that it does.
func (h *Hasher) Hashes() uint64 { return h.hashes.Load() }

// Hash returns the PHC string of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	rand.Read(salt)
	if err := h.acquire(ctx); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	h.hashes.Add(1)
	h.release()
	return encode(h.params, salt, key), nil
}

// Verify checks pw against a PHC string. needsRehash reports a hash made with other
// parameters, to be replaced now that the password is known. An empty or unparsable
// hash still costs one hash, so an account without a password takes as long to
// refuse as any other.
func (h *Hasher) Verify(ctx context.Context, phc, pw string) (needsRehash bool, err error) {
	p, salt, key, perr := decode(phc)
	if perr != nil {
		p, salt, key = h.params, make([]byte, h.params.SaltLen), make([]byte, h.params.KeyLen)
	}
	if err := h.acquire(ctx); err != nil {
		return false, fmt.Errorf("verify password: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	h.hashes.Add(1)
	h.release()
	if perr != nil || subtle.ConstantTimeCompare(got, key) != 1 {
		return false, ErrMismatch
	}
	return p != h.params, nil
}

// Generate returns a random password of 26 base32 characters (130 bits).
func Generate() string {
	return strings.ToLower(rand.Text())
}

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(phc string) (Params, []byte, []byte, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, errors.New("not an argon2id PHC string")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, errors.New("unsupported argon2 version")
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, fmt.Errorf("argon2 parameters: %w", err)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("argon2 salt: %w", err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return Params{}, nil, nil, errors.New("argon2 key")
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > 1<<21 || p.Time > 16 {
		return Params{}, nil, nil, errors.New("argon2 parameters out of range")
	}
	p.KeyLen, p.SaltLen = uint32(len(key)), uint32(len(salt))
	return p, salt, key, nil
}
