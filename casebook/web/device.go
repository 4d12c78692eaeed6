package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Device cookies follow OWASP's "Slow Down Online Guessing Attacks with Device
// Cookies": a browser that logged in to an account gets a cookie, signed by the
// server, naming the account. Failed logins from a browser holding one count against
// that cookie alone; failures from every other client count against the account's
// "untrusted clients" budget. Strangers can then lock the account only for strangers,
// and its owner keeps logging in from a browser they used before.
const (
	deviceCookieName = "__Host-casebook-device"
	// deviceCookieAge is the most browsers keep a cookie (RFC 6265bis caps it at 400 days).
	deviceCookieAge = 400 * 24 * time.Hour
	// deviceAccounts is how many accounts one browser remembers.
	deviceAccounts = 5
	deviceNonceLen = 12
	deviceMACLen   = 16
	deviceEntryLen = 8 + deviceNonceLen + deviceMACLen
	// deviceKeyName names the signing key in the shared key table.
	deviceKeyName = "device_cookie"
)

// UnlockKeys are the throttle rows that lock an account: key for strangers, and every
// row starting with devicePrefix for the account's known browsers. `casebook user
// unlock` clears them.
func UnlockKeys(email string, userID int64) (key, devicePrefix string) {
	return accountKey(email), "device:" + strconv.FormatInt(userID, 10) + ":"
}

func deviceThrottleKey(userID int64, nonce []byte) string {
	return "device:" + strconv.FormatInt(userID, 10) + ":" + hex.EncodeToString(nonce)
}

// deviceKey returns the signing key, shared by every instance through the database.
func (s *Server) deviceKey(ctx context.Context) ([]byte, error) {
	s.devMu.Lock()
	defer s.devMu.Unlock()
	if s.devKey != nil {
		return s.devKey, nil
	}
	k, err := s.store.AppKey(ctx, deviceKeyName, 32)
	if err != nil {
		return nil, err
	}
	s.devKey = k
	return k, nil
}

func deviceMAC(key []byte, uid uint64, nonce []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("casebook device cookie\x00"))
	binary.Write(m, binary.BigEndian, uid)
	m.Write(nonce)
	return m.Sum(nil)[:deviceMACLen]
}

// deviceEntries decodes the cookie's validly signed entries, by account.
func (s *Server) deviceEntries(r *http.Request, key []byte) map[uint64][]byte {
	out := map[uint64][]byte{}
	c, err := r.Cookie(s.deviceCookie())
	if err != nil {
		return out
	}
	for _, part := range strings.Split(c.Value, ".") {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil || len(b) != deviceEntryLen {
			continue
		}
		uid := binary.BigEndian.Uint64(b[:8])
		nonce := b[8 : 8+deviceNonceLen]
		if hmac.Equal(b[8+deviceNonceLen:], deviceMAC(key, uid, nonce)) {
			out[uid] = nonce
		}
	}
	return out
}

// hasDevices says whether the request carries any validly signed device entry.
func (s *Server) hasDevices(r *http.Request, key []byte) bool {
	return len(s.deviceEntries(r, key)) > 0
}

// knownDevice returns the throttle key of the request's device cookie for userID, or
// "" when the browser holds none that is valid.
func (s *Server) knownDevice(r *http.Request, key []byte, userID int64) string {
	if userID <= 0 {
		return ""
	}
	if nonce, ok := s.deviceEntries(r, key)[uint64(userID)]; ok {
		return deviceThrottleKey(userID, nonce)
	}
	return ""
}

// issueDevice gives the browser a fresh device cookie for userID, keeping its entries
// for other accounts (up to deviceAccounts in all).
func (s *Server) issueDevice(w http.ResponseWriter, r *http.Request, key []byte, userID int64) {
	nonce := make([]byte, deviceNonceLen)
	rand.Read(nonce)
	entry := make([]byte, 0, deviceEntryLen)
	entry = binary.BigEndian.AppendUint64(entry, uint64(userID))
	entry = append(entry, nonce...)
	entry = append(entry, deviceMAC(key, uint64(userID), nonce)...)
	parts := []string{base64.RawURLEncoding.EncodeToString(entry)}
	for uid, n := range s.deviceEntries(r, key) {
		if uid == uint64(userID) || len(parts) == deviceAccounts {
			continue
		}
		e := binary.BigEndian.AppendUint64(nil, uid)
		e = append(e, n...)
		e = append(e, deviceMAC(key, uid, n)...)
		parts = append(parts, base64.RawURLEncoding.EncodeToString(e))
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.deviceCookie(),
		Value:    strings.Join(parts, "."),
		Path:     "/",
		MaxAge:   int(deviceCookieAge.Seconds()),
		Secure:   !s.opt.InsecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) deviceCookie() string {
	if s.opt.InsecureCookies {
		return "casebook-device"
	}
	return deviceCookieName
}
