package casebook

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
)

func testSigner(t testing.TB) *TokenSigner {
	s, err := NewTokenSigner(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReplyToken(t *testing.T) {
	s := testSigner(t)
	tok := s.Sign(ReplyToken{CaseNumber: 123, UserID: 45})
	if tok != strings.ToLower(tok) {
		t.Errorf("token %q is not lowercase", tok)
	}
	for _, in := range []string{tok, strings.ToUpper(tok)} {
		got, err := s.Verify(in)
		if err != nil || got.CaseNumber != 123 || got.UserID != 45 {
			t.Errorf("Verify(%q) = %+v, %v", in, got, err)
		}
		if d := time.Until(got.Expires) - DefaultTokenTTL; d < -time.Minute || d > time.Hour {
			t.Errorf("Verify(%q) expires %v, want about %v from now", in, got.Expires, DefaultTokenTTL)
		}
	}
	other, _ := NewTokenSigner(bytes.Repeat([]byte("x"), 32))
	tampered := []byte(tok)
	tampered[0] ^= 1
	for name, bad := range map[string]string{
		"other key": other.Sign(ReplyToken{CaseNumber: 123, UserID: 45}),
		"tampered":  string(tampered),
		"empty":     "",
		"short":     tok[:10],
		"garbage":   "!!!!",
	} {
		if _, err := s.Verify(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: Verify err = %v, want ErrBadToken", name, err)
		}
	}
	if _, err := NewTokenSigner([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
}

func TestReplyTokenExpiry(t *testing.T) {
	s := testSigner(t)
	v1 := func(c, u uint64) string {
		p := binary.AppendUvarint(binary.AppendUvarint(nil, c), u)
		return strings.ToLower(tokenEncoding.EncodeToString(append(p, tokenMAC(s.keys[0], tokenV1, p)...)))
	}
	tests := []struct {
		name    string
		token   string
		want    ReplyToken
		wantErr error
	}{
		{"valid", s.Sign(ReplyToken{CaseNumber: 7, UserID: 3, Expires: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}),
			ReplyToken{CaseNumber: 7, UserID: 3, Expires: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}, nil},
		{"expired", s.Sign(ReplyToken{CaseNumber: 7, UserID: 3, Expires: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}),
			ReplyToken{CaseNumber: 7, UserID: 3, Expires: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}, ErrTokenExpired},
		{"v1 without expiry stays valid", v1(7, 3), ReplyToken{CaseNumber: 7, UserID: 3}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Verify(tt.token)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify err = %v, want %v", err, tt.wantErr)
			}
			if tt.want != (ReplyToken{}) && got != tt.want {
				t.Errorf("Verify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPlusAddress(t *testing.T) {
	addr, err := PlusAddress("support@example.com", "abc")
	if err != nil || addr != "support+abc@example.com" {
		t.Fatalf("PlusAddress = %q, %v", addr, err)
	}
	tests := map[string]string{
		"support+abc@example.com":  "abc",
		"SUPPORT+ABC@Example.COM":  "ABC",
		"support@example.com":      "",
		"support+@example.com":     "",
		"other+abc@example.com":    "",
		"support+abc@evil.com":     "",
		"supportx+abc@example.com": "",
	}
	for in, want := range tests {
		if got := TokenFromAddress("support@example.com", in); got != want {
			t.Errorf("TokenFromAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzVerifyToken(f *testing.F) {
	s := testSigner(f)
	f.Add(s.Sign(ReplyToken{CaseNumber: 1, UserID: 1}))
	f.Add("aaaa")
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := s.Verify(tok)
		if err != nil {
			return
		}
		if s.Sign(got) != strings.ToLower(tok) {
			t.Fatalf("Verify(%q) accepted a token that is not the signature of %+v", tok, got)
		}
	})
}

// TestReplyTokenRotation: a signer signs with its first key and accepts tokens of the
// keys it replaced; a token of a key it does not hold is refused.
func TestReplyTokenRotation(t *testing.T) {
	oldKey, newKey, stranger := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32), bytes.Repeat([]byte("s"), 32)
	before := must(NewTokenSigner(oldKey))
	after := must(NewTokenSigner(newKey, oldKey))
	other := must(NewTokenSigner(stranger))
	tok := ReplyToken{CaseNumber: 7, UserID: 3}
	for _, tc := range []struct {
		name   string
		token  string
		wantOK bool
	}{
		{"signed before the rotation", before.Sign(tok), true},
		{"signed after it", after.Sign(tok), true},
		{"signed with another key", other.Sign(tok), false},
	} {
		got, err := after.Verify(tc.token)
		if ok := err == nil && got.CaseNumber == 7 && got.UserID == 3; ok != tc.wantOK {
			t.Errorf("%s: %+v, %v; want ok %v", tc.name, got, err, tc.wantOK)
		}
	}
	if _, err := before.Verify(after.Sign(tok)); !errors.Is(err, ErrBadToken) {
		t.Errorf("a token of the new key verified with only the old one: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
