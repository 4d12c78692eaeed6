package casebook

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFilenameBytes is the longest stored filename; most file systems stop at 255 bytes.
const MaxFilenameBytes = 255

// FallbackFilename names a file that arrived without a usable name.
const FallbackFilename = "attachment"

// SanitizeFilename makes a sender's filename safe to show and to offer for download.
// Names are display-only (blobs are stored by hash), so this guards people, not paths:
// it keeps the last path element, drops control characters and bidirectional
// overrides (which make "exe.pdf" read as "fdp.exe"), trims dots and spaces, and caps
// the length at MaxFilenameBytes on a rune boundary, keeping the extension. Channels
// normalise to NFC before calling it.
func SanitizeFilename(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), isBidiControl(r), r == utf8.RuneError:
			return -1
		case r == ':' || r == '"' || r == '<' || r == '>' || r == '|' || r == '*' || r == '?':
			return '_'
		}
		return r
	}, name)
	name = strings.Trim(name, ". \t")
	if name == "" {
		return FallbackFilename
	}
	if len(name) > MaxFilenameBytes {
		ext := ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
			ext = name[i:]
		}
		base := name[:MaxFilenameBytes-len(ext)]
		for !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
		name = base + ext
	}
	return name
}

// isBidiControl reports the Unicode bidirectional formatting characters
// (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069).
func isBidiControl(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F:
		return true
	case r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
