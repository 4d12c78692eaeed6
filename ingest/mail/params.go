package mail

import (
	"bytes"
	"io"
	"mime"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"

	"github.com/casebookhq/casebook/casebook"
)

// parseHeaderValue reads a structured header such as Content-Type or
// Content-Disposition: the lowercased value and its parameters, with RFC 2231
// continuations and charsets decoded. It is lenient where mail in the wild is broken
// and mime.ParseMediaType gives up: unquoted values with spaces, unknown charsets,
// a missing closing quote, and RFC 2047 encoded-words where RFC 2231 belongs (as
// Gmail and Outlook write filename="=?UTF-8?B?...?=").
func parseHeaderValue(v string) (string, map[string]string) {
	segs := splitParams(v)
	params := map[string]string{}
	if len(segs) == 0 {
		return "", params
	}
	value := strings.ToLower(strings.TrimSpace(segs[0]))
	type section struct {
		v   string
		enc bool
	}
	ext := map[string]map[int]section{}
	for _, seg := range segs[1:] {
		name, val, ok := strings.Cut(seg, "=")
		if !ok {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		val = unquote(strings.TrimSpace(val))
		base, rest, star := strings.Cut(name, "*")
		if !star {
			if _, dup := params[name]; !dup {
				params[name] = val
			}
			continue
		}
		if ext[base] == nil {
			ext[base] = map[int]section{}
		}
		if rest == "" { // name*=charset'lang'value
			ext[base][-1] = section{val, true}
			continue
		}
		num, enc := strings.CutSuffix(rest, "*")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || n > 999 {
			continue
		}
		ext[base][n] = section{val, enc}
	}
	for base, secs := range ext {
		var order []section
		if s, ok := secs[-1]; ok {
			order = []section{s}
		} else {
			// RFC 2231 section 3: sections count up from 0 and stop at the first gap.
			for k := 0; ; k++ {
				s, ok := secs[k]
				if !ok {
					break
				}
				order = append(order, s)
			}
		}
		var raw []byte
		cs := ""
		for i, s := range order {
			if !s.enc {
				raw = append(raw, s.v...)
				continue
			}
			val := s.v
			if i == 0 {
				// The first encoded section carries charset'language'.
				if c, restv, ok := strings.Cut(val, "'"); ok {
					if _, v2, ok := strings.Cut(restv, "'"); ok {
						cs, val = c, v2
					}
				}
			}
			raw = append(raw, percentDecode(val)...)
		}
		if len(order) > 0 {
			params[base] = decodeText(decodeCharset(cs, raw))
		}
	}
	for k, v := range params {
		if strings.Contains(v, "=?") {
			params[k] = decodeText(v)
		} else if !utf8.ValidString(v) {
			params[k] = decodeCharset("", []byte(v))
		}
	}
	return value, params
}

// splitParams splits at semicolons outside quoted strings.
func splitParams(v string) []string {
	var out []string
	start, inQuote := 0, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case ';':
			if !inQuote {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}

// unquote reads an RFC 5322 quoted-string, tolerating a missing closing quote.
func unquote(v string) string {
	if !strings.HasPrefix(v, `"`) {
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func percentDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			v, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			out = append(out, byte(v))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// decodeCharset converts b from the named charset to UTF-8. Unknown or wrong labels
// fall back to UTF-8 when b is valid UTF-8 and to Windows-1252 otherwise, the charset
// old clients send undeclared.
func decodeCharset(cs string, b []byte) string {
	cs = strings.ToLower(strings.TrimSpace(cs))
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	default:
		if r, err := charset.Reader(cs, bytes.NewReader(b)); err == nil {
			if out, err := io.ReadAll(io.LimitReader(r, int64(4*len(b)+16))); err == nil && utf8.Valid(out) {
				return string(out)
			}
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}

var wordDecoder = mime.WordDecoder{CharsetReader: charset.Reader}

// decodeText decodes RFC 2047 encoded-words in an unstructured header (Subject, a
// display name, a filename) in any charset go-message knows, and turns raw 8-bit
// bytes into UTF-8.
func decodeText(s string) string {
	if !utf8.ValidString(s) {
		s = decodeCharset("", []byte(s))
	}
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	if !utf8.ValidString(d) {
		// An encoded-word that lies about its charset.
		return decodeCharset("", []byte(d))
	}
	return d
}

// partFilename is the sender's name for a part: Content-Disposition's filename, else
// Content-Type's name (old clients and Outlook's inline images), decoded.
func partFilename(h textproto.Header) string {
	return Filename(h.Get("Content-Disposition"), h.Get("Content-Type"))
}

// Filename decodes the filename a part's Content-Disposition and Content-Type header
// values give, or returns "" when they give none. The result is decoded but not yet
// safe to show: pass it through CleanFilename.
func Filename(contentDisposition, contentType string) string {
	if _, p := parseHeaderValue(contentDisposition); strings.TrimSpace(p["filename"]) != "" {
		return p["filename"]
	}
	_, p := parseHeaderValue(contentType)
	return p["name"]
}

// CleanFilename makes a decoded filename safe to show and store: NFC (a name typed on
// a Mac arrives decomposed), then casebook.SanitizeFilename.
func CleanFilename(name string) string {
	return casebook.SanitizeFilename(norm.NFC.String(name))
}
