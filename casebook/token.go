package casebook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// tokenMACLen is the HMAC length kept in a reply token: 10 bytes = 80 bits, so a
// stranger guessing a token for a known case number needs about 2^79 tries.
const tokenMACLen = 10

// ErrBadToken reports a reply token that does not verify.
var ErrBadToken = errors.New("reply token is not valid")

// tokenEncoding is lowercase because mail servers may fold the local part's case;
// Decode upper-cases before decoding.
var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ReplyToken is what the plus-address of a case mail carries: the case and the contact
// it was sent to, signed with the server's key.
type ReplyToken struct {
	CaseNumber int64
	UserID     int64
}

// TokenSigner makes and checks reply tokens with one HMAC-SHA256 key.
type TokenSigner struct{ key []byte }

// NewTokenSigner returns a signer for key, which must hold at least 32 bytes.
func NewTokenSigner(key []byte) (*TokenSigner, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("reply token key: %d bytes, need at least 32", len(key))
	}
	return &TokenSigner{key: append([]byte(nil), key...)}, nil
}

// Sign returns the token for t: lowercase base32 of case, contact and MAC.
func (s *TokenSigner) Sign(t ReplyToken) string {
	payload := binary.AppendUvarint(nil, uint64(t.CaseNumber))
	payload = binary.AppendUvarint(payload, uint64(t.UserID))
	payload = append(payload, s.mac(payload)...)
	return strings.ToLower(tokenEncoding.EncodeToString(payload))
}

// Verify checks a token, in any letter case, and returns what it names.
func (s *TokenSigner) Verify(token string) (ReplyToken, error) {
	raw, err := tokenEncoding.DecodeString(strings.ToUpper(token))
	if err != nil || len(raw) <= tokenMACLen {
		return ReplyToken{}, ErrBadToken
	}
	payload, mac := raw[:len(raw)-tokenMACLen], raw[len(raw)-tokenMACLen:]
	if !hmac.Equal(mac, s.mac(payload)) {
		return ReplyToken{}, ErrBadToken
	}
	c, n := binary.Uvarint(payload)
	if n <= 0 {
		return ReplyToken{}, ErrBadToken
	}
	u, m := binary.Uvarint(payload[n:])
	if m <= 0 || n+m != len(payload) || c == 0 || c > MaxCaseNumber || u > 1<<62 {
		return ReplyToken{}, ErrBadToken
	}
	return ReplyToken{CaseNumber: int64(c), UserID: int64(u)}, nil
}

func (s *TokenSigner) mac(payload []byte) []byte {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte("casebook reply token v1\x00"))
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
