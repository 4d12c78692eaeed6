package password

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits in characters. NIST SP 800-63B §3.1.1.2 asks for at least 15 when the
// password is the only factor and for accepting at least 64; the upper bound only
// keeps a request from hashing megabytes.
const (
	MinLength = 15
	MaxLength = 256
)

// ErrWeak reports a password the policy refuses; the wrapped message says why in words
// a person can act on.
var ErrWeak = errors.New("password refused")

//go:embed common-passwords.txt
var commonList string

var common = func() map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(commonList))
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
			m[w] = true
		}
	}
	return m
}()

// Check applies the policy of NIST SP 800-63B: a length range and a blocklist, and no
// composition rules (no "one digit, one symbol"), which only make passwords harder to
// remember and no harder to guess. context holds words the password must not contain
// (the user's email address and its local part).
func Check(pw string, context ...string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinLength:
		return fmt.Errorf("%w: use at least %d characters (you typed %d); a few unrelated words work well", ErrWeak, MinLength, n)
	case n > MaxLength:
		return fmt.Errorf("%w: use at most %d characters", ErrWeak, MaxLength)
	case isCommon(pw):
		return fmt.Errorf("%w: it is on a list of common passwords that attackers try first", ErrWeak)
	}
	lower := strings.ToLower(pw)
	for _, c := range context {
		if c = strings.ToLower(strings.TrimSpace(c)); len(c) >= 4 && strings.Contains(lower, c) {
			return fmt.Errorf("%w: it must not contain your email address or name", ErrWeak)
		}
	}
	return nil
}

// isCommon reports a listed password, alone, repeated, or wrapped in digits and
// punctuation, and passwords made of very few distinct characters ("aaaa…", "1212…").
func isCommon(pw string) bool {
	s := strings.ToLower(strings.Join(strings.Fields(pw), ""))
	if common[s] || distinct(s) < 5 {
		return true
	}
	core := strings.TrimFunc(s, func(r rune) bool { return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) })
	if core == "" || common[core] {
		return true
	}
	for size := 1; size <= len(core)/2; size++ {
		if len(core)%size == 0 && strings.Repeat(core[:size], len(core)/size) == core {
			return common[core[:size]] || size <= 4 || len(core)/size >= 3
		}
	}
	return false
}

func distinct(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[r] = true
	}
	return len(seen)
}
