package casebook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// tokenMACLen is the HMAC length kept in a reply token: 10 bytes = 80 bits, so a
// stranger guessing a token for a known case number needs about 2^79 tries.
const tokenMACLen = 10

// ErrBadToken reports a reply token that does not verify.
var ErrBadToken = errors.New("reply token is not valid")

// tokenEncoding is lowercase because mail servers may fold the local part's case;
// Decode upper-cases before decoding.
var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DefaultTokenTTL is how long a reply token stays valid unless configured otherwise:
// long enough for a customer to answer a case mail months later, short enough that a
// token found in an old mailbox stops opening the case.
const DefaultTokenTTL = 180 * 24 * time.Hour

// ReplyToken is what the plus-address of a case mail carries: the case and the contact
// it was sent to, and when it expires, signed with the server's key.
type ReplyToken struct {
	CaseNumber int64
	UserID     int64
	// Expires is when the token stops proving anything, to the hour. It is zero for a
	// token minted before tokens carried an expiry (format v1): those stay valid, since
	// their age cannot be known and refusing them would quarantine every answer to mail
	// sent before the upgrade. Rotating the token key retires them.
	Expires time.Time
}

// TokenSigner makes and checks reply tokens with one HMAC-SHA256 key.
type TokenSigner struct {
	// keys[0] signs; every key verifies, so that replies to mail signed before a
	// rotation still find their case.
	keys [][]byte
	ttl  time.Duration
}

// NewTokenSigner returns a signer that signs with key and also accepts tokens signed
// with any of older (keys it replaced). Each key must hold at least 32 bytes. Its
// tokens expire after DefaultTokenTTL.
func NewTokenSigner(key []byte, older ...[]byte) (*TokenSigner, error) {
	s := &TokenSigner{ttl: DefaultTokenTTL}
	for _, k := range append([][]byte{key}, older...) {
		if len(k) < 32 {
			return nil, fmt.Errorf("reply token key: %d bytes, need at least 32", len(k))
		}
		s.keys = append(s.keys, append([]byte(nil), k...))
	}
	return s, nil
}

// WithTTL returns a signer with the same key whose tokens expire ttl after signing.
func (s *TokenSigner) WithTTL(ttl time.Duration) *TokenSigner {
	c := *s
	if ttl > 0 {
		c.ttl = ttl
	}
	return &c
}

// TTL is how long the signer's tokens stay valid.
func (s *TokenSigner) TTL() time.Duration { return s.ttl }

// Sign returns the token for t: lowercase base32 of case, contact, expiry in Unix
// hours, and MAC. A zero t.Expires means the signer's TTL from now.
func (s *TokenSigner) Sign(t ReplyToken) string {
	if t.Expires.IsZero() {
		t.Expires = time.Now().Add(s.ttl)
	}
	payload := binary.AppendUvarint(nil, uint64(t.CaseNumber))
	payload = binary.AppendUvarint(payload, uint64(t.UserID))
	payload = binary.AppendUvarint(payload, uint64(max(0, (t.Expires.Unix()+3599)/3600)))
	payload = append(payload, tokenMAC(s.keys[0], tokenV2, payload)...)
	return strings.ToLower(tokenEncoding.EncodeToString(payload))
}

// Verify checks a token, in any letter case, and returns what it names. A token that
// is genuine but past its expiry returns what it names with ErrTokenExpired, so the
// caller can say which case it was for.
func (s *TokenSigner) Verify(token string) (ReplyToken, error) {
	raw, err := tokenEncoding.DecodeString(strings.ToUpper(token))
	if err != nil || len(raw) <= tokenMACLen {
		return ReplyToken{}, ErrBadToken
	}
	payload, mac := raw[:len(raw)-tokenMACLen], raw[len(raw)-tokenMACLen:]
	fields := 0
	for _, k := range s.keys {
		if hmac.Equal(mac, tokenMAC(k, tokenV2, payload)) {
			fields = 3
		} else if hmac.Equal(mac, tokenMAC(k, tokenV1, payload)) {
			fields = 2
		}
		if fields > 0 {
			break
		}
	}
	if fields == 0 {
		return ReplyToken{}, ErrBadToken
	}
	var v [3]uint64
	rest := payload
	for i := range fields {
		x, n := binary.Uvarint(rest)
		if n <= 0 {
			return ReplyToken{}, ErrBadToken
		}
		v[i], rest = x, rest[n:]
	}
	if len(rest) != 0 || v[0] == 0 || v[0] > MaxCaseNumber || v[1] > 1<<62 || v[2] > 1<<40 {
		return ReplyToken{}, ErrBadToken
	}
	t := ReplyToken{CaseNumber: int64(v[0]), UserID: int64(v[1])}
	if fields == 3 {
		t.Expires = time.Unix(int64(v[2])*3600, 0).UTC()
		if time.Now().After(t.Expires) {
			return t, ErrTokenExpired
		}
	}
	return t, nil
}

// The MAC's domain separators: v1 tokens carry no expiry.
const (
	tokenV1 = "casebook reply token v1\x00"
	tokenV2 = "casebook reply token v2\x00"
)

func tokenMAC(key []byte, version string, payload []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(version))
	h.Write(payload)
	return h.Sum(nil)[:tokenMACLen]
}

// PlusAddress returns local+token@domain for a reply address such as support@example.com.
func PlusAddress(replyAddress, token string) (string, error) {
	at := strings.LastIndexByte(replyAddress, '@')
	if at <= 0 {
		return "", fmt.Errorf("%w: reply address %q has no local part", ErrInvalidInput, replyAddress)
	}
	return replyAddress[:at] + "+" + token + replyAddress[at:], nil
}

// TokenFromAddress returns the plus-part of addr when addr is a plus-address of
// replyAddress (compared without regard to letter case), or "".
func TokenFromAddress(replyAddress, addr string) string {
	at, bt := strings.LastIndexByte(replyAddress, '@'), strings.LastIndexByte(addr, '@')
	if at <= 0 || bt <= 0 || !strings.EqualFold(replyAddress[at:], addr[bt:]) {
		return ""
	}
	local, base := addr[:bt], replyAddress[:at]
	if len(local) <= len(base)+1 || !strings.EqualFold(local[:len(base)], base) || local[len(base)] != '+' {
		return ""
	}
	return local[len(base)+1:]
}
