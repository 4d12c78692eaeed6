package casebook

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSanitizeFilename(t *testing.T) {
	long := strings.Repeat("é", 200) + ".pdf"
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\boot.ini`, "boot.ini"},
		{"a\x00b\r\nc.txt", "abc.txt"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"},
		{"..", FallbackFilename},
		{"", FallbackFilename},
		{" .hidden. ", "hidden"},
		{"a:b?.txt", "a_b_.txt"},
		{"bad\xffutf8.txt", "badutf8.txt"},
	}
	for _, tt := range tests {
		if got := SanitizeFilename(tt.in); got != tt.want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := SanitizeFilename(long)
	if len(got) > MaxFilenameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, ".pdf") {
		t.Errorf("long name: %d bytes, valid %v, %q", len(got), utf8.ValidString(got), got[len(got)-8:])
	}
}

func FuzzSanitizeFilename(f *testing.F) {
	for _, s := range []string{"a.pdf", "../x", "\u202Eabc", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeFilename(in)
		if got == "" || len(got) > MaxFilenameBytes || !utf8.ValidString(got) {
			t.Fatalf("SanitizeFilename(%q) = %q", in, got)
		}
		if strings.ContainsAny(got, "/\\\x00\r\n") || got == "." || got == ".." {
			t.Fatalf("SanitizeFilename(%q) = %q keeps a separator or control", in, got)
		}
		for _, r := range got {
			if isBidiControl(r) {
				t.Fatalf("SanitizeFilename(%q) = %q keeps a bidi control", in, got)
			}
		}
	})
}
