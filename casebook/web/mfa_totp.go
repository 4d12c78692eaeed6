package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// totpPeriod is RFC 6238's default time step, the one every authenticator app uses
// when the otpauth URL names no other.
const totpPeriod = 30

// totpOpts are the parameters of every factor: six digits, HMAC-SHA-1, 30 seconds,
// what Google Authenticator and its peers assume.
var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// totpIssuer names the account in the user's authenticator app.
const totpIssuer = "casebook"

// recoveryCodeCount recovery codes are issued at enrolment.
const recoveryCodeCount = 10

var (
	// errCodeWrong: the code matches no step within the window.
	errCodeWrong = errors.New("code is not right")
	// errCodeReplayed: the code matches a step that was already used.
	errCodeReplayed = errors.New("code was used before")
	// errNoMFAKey: a secret was sealed under --mfa-key, but none is configured.
	errNoMFAKey = errors.New("second-factor secret is sealed but no --mfa-key is configured")
)

// totpStep is the RFC 6238 time step of t.
func totpStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// normalizeCode forgives the spaces and dashes people type or paste into codes.
func normalizeCode(code string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
}

// isTOTPCode says whether a normalized code has the shape of a TOTP code rather than
// a recovery code.
func isTOTPCode(code string) bool {
	if len(code) != int(totpOpts.Digits) {
		return false
	}
	_, err := strconv.ParseUint(code, 10, 32)
	return err == nil
}

// matchTOTP returns the time step that code belongs to. Codes of the current step and
// of one step either side are accepted, for clock drift and typing time (RFC 6238
// §5.2), but only for a step after lastStep: a code, once used, does not work again,
// and neither does any code older than it. The caller records the step, atomically,
// before it accepts the code.
func matchTOTP(secret, code string, now time.Time, lastStep int64) (int64, error) {
	code = normalizeCode(code)
	if !isTOTPCode(code) {
		return 0, errCodeWrong
	}
	step := totpStep(now)
	replayed := false
	for _, s := range []int64{step, step - 1, step + 1} {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), totpOpts)
		if err != nil {
			return 0, fmt.Errorf("totp: %w", err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		if s <= lastStep {
			replayed = true
			continue
		}
		return s, nil
	}
	if replayed {
		return 0, errCodeReplayed
	}
	return 0, errCodeWrong
}

// newTOTPKey makes a new random 160-bit secret (RFC 4226 §4's recommended length)
// for account.
func newTOTPKey(account string) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: account, Period: totpPeriod,
		Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
}

// totpKey rebuilds the key of a stored base32 secret, for its QR code.
func totpKey(account, secret string) (*otp.Key, error) {
	raw, err := otpBase32.DecodeString(strings.ToUpper(secret))
	if err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	return totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: account, Period: totpPeriod,
		Secret: raw, Digits: totpOpts.Digits, Algorithm: totpOpts.Algorithm})
}

// groupSecret shows a base32 secret in groups of four, easier to type into an app.
func groupSecret(secret string) string {
	var b strings.Builder
	for i, r := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// newRecoveryCodes makes recoveryCodeCount codes of 50 random bits each, shown as
// two groups of five base32 letters and digits.
func newRecoveryCodes() []string {
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		t := strings.ToLower(rand.Text()[:10])
		codes[i] = t[:5] + "-" + t[5:]
	}
	return codes
}

// recoveryHash is what is stored of a recovery code. The codes are random, so a
// fast hash suffices: there is no dictionary to try.
func recoveryHash(code string) string {
	sum := sha256.Sum256([]byte("casebook recovery code\x00" + normalizeCode(code)))
	return hex.EncodeToString(sum[:])
}

// Stored forms of a TOTP secret.
const (
	sealedPrefix = "aes-gcm:"
	plainPrefix  = "plain:"
)

// secretBox seals TOTP secrets for storage. With a key, a secret is encrypted with
// AES-256-GCM under a key derived from it, and bound to its user (the user id is the
// additional data), so a copy of the database alone reveals no secret and a row
// copied to another user does not open. Without a key the secret is stored as text:
// still never logged, but only as safe as the database.
type secretBox struct {
	aead cipher.AEAD
}

// newSecretBox derives the sealing key from key with HKDF-SHA-256; an empty key
// stores secrets as text.
func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) == 0 {
		return &secretBox{}, nil
	}
	k, err := hkdf.Key(sha256.New, key, nil, "casebook totp secret v1", 32)
	if err != nil {
		return nil, fmt.Errorf("mfa key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("mfa key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mfa key: %w", err)
	}
	return &secretBox{aead: aead}, nil
}

func userAD(userID int64) []byte { return []byte("user:" + strconv.FormatInt(userID, 10)) }

// seal returns the stored form of userID's secret.
func (b *secretBox) seal(userID int64, secret string) string {
	if b.aead == nil {
		return plainPrefix + secret
	}
	nonce := make([]byte, b.aead.NonceSize())
	rand.Read(nonce)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(secret), userAD(userID)))
}

// open returns the secret of a stored form. A text secret opens with or without a
// key, so a key can be added to a running installation; a sealed one needs it.
func (b *secretBox) open(userID int64, stored string) (string, error) {
	if s, ok := strings.CutPrefix(stored, plainPrefix); ok {
		return s, nil
	}
	enc, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return "", errors.New("second-factor secret: unknown stored form")
	}
	if b.aead == nil {
		return "", errNoMFAKey
	}
	raw, err := base64.RawStdEncoding.DecodeString(enc)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return "", errors.New("second-factor secret: malformed")
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, raw[:n], raw[n:], userAD(userID))
	if err != nil {
		return "", fmt.Errorf("second-factor secret of user %d does not open under the configured --mfa-key: %w", userID, err)
	}
	return string(pt), nil
}

// otpBase32 is the alphabet of TOTP secrets: RFC 4648 base32 without padding.
var otpBase32 = base32.StdEncoding.WithPadding(base32.NoPadding)
