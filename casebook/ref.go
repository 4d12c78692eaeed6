package casebook

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxCaseNumber bounds the digits a reference may carry, so that a run of digits such as
// a phone or order number glued to the prefix is not read as a case.
const MaxCaseNumber = 999_999_999

// RefFormat prints and finds case references such as CASE-000123.
//
// Accepted in free text, with the prefix in any letter case:
//
//	CASE-123   CASE-000123   CASE#123   CASE #123   CASE-#123
//	[CASE-000123]   (CASE-123)   Re: [case-123] …
//
// Rejected as look-alikes: the prefix inside a longer word (SHOWCASE-12, CASE-12X,
// CASE_12), a number inside a longer token (CASE-12-3, CASE-1.5), more than nine
// digits, and the number zero. "case 12" (a space and no "#") is ordinary prose, as in
// "in case 2 files fail", and is not a reference. A bare "#123" is not a reference: chat platforms use
// "<#123>" for channel mentions.
type RefFormat struct {
	// Prefix is the word before the number, "CASE" by default.
	Prefix string
}

// DefaultRefFormat is the reference format used when none is configured.
var DefaultRefFormat = RefFormat{Prefix: "CASE"}

func (f RefFormat) prefix() string {
	if f.Prefix == "" {
		return "CASE"
	}
	return f.Prefix
}

// Format prints a case number, e.g. CASE-000123.
func (f RefFormat) Format(number int64) string {
	return fmt.Sprintf("%s-%06d", strings.ToUpper(f.prefix()), number)
}

// Parse reads a reference that stands alone (a command argument): CASE-000123,
// case #123 or a bare number.
func (f RefFormat) Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && n <= MaxCaseNumber {
		return n, nil
	}
	refs := f.FindAll(s)
	if len(refs) != 1 || strings.TrimSpace(strings.Trim(s, "[]()")) == "" {
		return 0, fmt.Errorf("%w: %q is not a case reference like %s", ErrInvalidInput, s, f.Format(123))
	}
	return refs[0], nil
}

// Find returns the one case named in text. More than one distinct case is
// ErrAmbiguousCase; none is ErrNoCaseRef. The same case named twice is one case.
func (f RefFormat) Find(text string) (int64, error) {
	refs := f.FindAll(text)
	switch len(refs) {
	case 0:
		return 0, ErrNoCaseRef
	case 1:
		return refs[0], nil
	}
	return 0, fmt.Errorf("%w: %s and %s", ErrAmbiguousCase, f.Format(refs[0]), f.Format(refs[1]))
}

// FindAll returns the distinct case numbers named in text, in order of appearance.
func (f RefFormat) FindAll(text string) []int64 {
	p := f.prefix()
	var out []int64
	for i := 0; i < len(text); {
		j := indexFold(text[i:], p)
		if j < 0 {
			break
		}
		start := i + j
		i = start + len(p)
		if start > 0 {
			r, _ := utf8.DecodeLastRuneInString(text[:start])
			if isWordRune(r) {
				continue
			}
		}
		n, end, ok := parseRefTail(text[i:])
		if !ok {
			continue
		}
		i += end
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// parseRefTail reads the separator and digits after the prefix: "-", "#", " #" or "-#".
func parseRefTail(s string) (n int64, end int, ok bool) {
	k := 0
	switch {
	case strings.HasPrefix(s, "-#"):
		k = 2
	case strings.HasPrefix(s, " #"):
		k = 2
	case strings.HasPrefix(s, "-"), strings.HasPrefix(s, "#"):
		k = 1
	default:
		return 0, 0, false
	}
	d := k
	for d < len(s) && s[d] >= '0' && s[d] <= '9' {
		d++
	}
	digits := s[k:d]
	if len(digits) == 0 || len(digits) > 9 {
		return 0, 0, false
	}
	// A number glued to more word characters, or continued as "-3"/".5", is some other token.
	if d < len(s) {
		r, size := utf8.DecodeRuneInString(s[d:])
		if isWordRune(r) {
			return 0, 0, false
		}
		if (r == '-' || r == '.' || r == '/' || r == ',') && d+size < len(s) && s[d+size] >= '0' && s[d+size] <= '9' {
			return 0, 0, false
		}
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v == 0 {
		return 0, 0, false
	}
	return v, d, true
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// indexFold is strings.Index ignoring ASCII letter case.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
