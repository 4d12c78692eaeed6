package casebook

import (
	"bytes"
	"errors"
	"strings"
	"testing"
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
		if err != nil || got != (ReplyToken{CaseNumber: 123, UserID: 45}) {
			t.Errorf("Verify(%q) = %+v, %v", in, got, err)
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
