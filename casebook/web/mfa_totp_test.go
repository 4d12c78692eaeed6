package web

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

const testSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

func codeAt(t *testing.T, step int64) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(testSecret, time.Unix(step*totpPeriod, 0), totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMatchTOTP checks RFC 6238's window (the step of now, and one either side) and
// the replay rule: a step at or before the last one used never works again.
func TestMatchTOTP(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 10, 0, time.UTC)
	step := totpStep(now)
	cases := []struct {
		name     string
		code     string
		lastStep int64
		want     int64
		err      error
	}{
		{"current step", codeAt(t, step), 0, step, nil},
		{"previous step, allowed once", codeAt(t, step-1), 0, step - 1, nil},
		{"next step, allowed once", codeAt(t, step+1), 0, step + 1, nil},
		{"two steps back", codeAt(t, step-2), 0, 0, errCodeWrong},
		{"two steps ahead", codeAt(t, step+2), 0, 0, errCodeWrong},
		{"current code replayed", codeAt(t, step), step, 0, errCodeReplayed},
		{"previous code replayed", codeAt(t, step-1), step - 1, 0, errCodeReplayed},
		{"next code replayed", codeAt(t, step+1), step + 1, 0, errCodeReplayed},
		{"an older code after a newer one", codeAt(t, step-1), step, 0, errCodeReplayed},
		{"the current code after the next one", codeAt(t, step), step + 1, 0, errCodeReplayed},
		{"the next code after the current one", codeAt(t, step+1), step, step + 1, nil},
		{"spaces and dashes forgiven", codeAt(t, step)[:3] + " - " + codeAt(t, step)[3:], 0, step, nil},
		{"wrong digits", wrongCode(codeAt(t, step), codeAt(t, step-1), codeAt(t, step+1)), 0, 0, errCodeWrong},
		{"letters", "abcdef", 0, 0, errCodeWrong},
		{"too long", codeAt(t, step) + "0", 0, 0, errCodeWrong},
		{"empty", "", 0, 0, errCodeWrong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := matchTOTP(testSecret, c.code, now, c.lastStep)
			if !errors.Is(err, c.err) || got != c.want {
				t.Errorf("matchTOTP(%q, last %d) = %d, %v; want %d, %v", c.code, c.lastStep-step, got-step, err, c.want-step, c.err)
			}
		})
	}
}

// wrongCode returns a six-digit code that is none of the window's.
func wrongCode(window ...string) string {
	for _, c := range []string{"000000", "111111", "222222"} {
		if !strings.Contains(strings.Join(window, " "), c) {
			return c
		}
	}
	panic("unreachable")
}

// TestTOTPCodeOnce walks a user through the sequence a store sees: each accepted
// step becomes lastStep, and the same code, or the one before it, is refused after.
func TestTOTPCodeOnce(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 10, 0, time.UTC)
	step := totpStep(now)
	last := int64(0)
	for i, try := range []struct {
		code string
		ok   bool
	}{
		{codeAt(t, step-1), true},  // the phone lags a step: accepted
		{codeAt(t, step-1), false}, // replayed
		{codeAt(t, step), true},    // the current one still works, once
		{codeAt(t, step), false},
		{codeAt(t, step-1), false},
		{codeAt(t, step+1), true}, // a fast phone's next code, once
		{codeAt(t, step+1), false},
		{codeAt(t, step), false},
	} {
		s, err := matchTOTP(testSecret, try.code, now, last)
		if (err == nil) != try.ok {
			t.Fatalf("try %d: err = %v, want ok=%v", i, err, try.ok)
		}
		if err == nil {
			last = s
		}
	}
}

func TestSecretBox(t *testing.T) {
	keyed, err := newSecretBox([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newSecretBox([]byte("another key of thirty-two bytes!"))
	plain, _ := newSecretBox(nil)

	sealed := keyed.seal(7, testSecret)
	if !strings.HasPrefix(sealed, sealedPrefix) || strings.Contains(sealed, testSecret) {
		t.Errorf("sealed form %q reveals the secret", sealed)
	}
	if sealed == keyed.seal(7, testSecret) {
		t.Errorf("two seals of one secret are equal: the nonce is not fresh")
	}
	stored := plain.seal(7, testSecret)
	cases := []struct {
		name   string
		box    *secretBox
		user   int64
		stored string
		ok     bool
	}{
		{"sealed, right key", keyed, 7, sealed, true},
		{"sealed, other user's row", keyed, 8, sealed, false},
		{"sealed, other key", other, 7, sealed, false},
		{"sealed, no key", plain, 7, sealed, false},
		{"text, no key", plain, 7, stored, true},
		{"text, key added later", keyed, 7, stored, true},
		{"unknown form", keyed, 7, testSecret, false},
		{"truncated", keyed, 7, sealedPrefix + "AAAA", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.box.open(c.user, c.stored)
			if c.ok && (err != nil || got != testSecret) {
				t.Errorf("open = %q, %v", got, err)
			}
			if !c.ok && err == nil {
				t.Errorf("open succeeded: %q", got)
			}
		})
	}
	if _, err := plain.open(7, sealed); !errors.Is(err, errNoMFAKey) {
		t.Errorf("sealed without a key: %v, want errNoMFAKey", err)
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes := newRecoveryCodes()
	if len(codes) != recoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	shape := regexp.MustCompile(`^[a-z2-7]{5}-[a-z2-7]{5}$`)
	seen := map[string]bool{}
	for _, c := range codes {
		if !shape.MatchString(c) || seen[c] {
			t.Errorf("code %q malformed or repeated", c)
		}
		seen[c] = true
		if isTOTPCode(normalizeCode(c)) {
			t.Errorf("recovery code %q looks like a TOTP code", c)
		}
	}
	if recoveryHash("ABCDE FGHIJ") != recoveryHash("abcde-fghij") {
		t.Errorf("case and separators change the hash")
	}
	if recoveryHash("abcde-fghij") == recoveryHash("abcde-fghik") {
		t.Errorf("different codes share a hash")
	}
}

func TestGroupSecret(t *testing.T) {
	if got := groupSecret("ABCDEFGHIJ"); got != "ABCD EFGH IJ" {
		t.Errorf("groupSecret = %q", got)
	}
}

func TestParseMFAPolicy(t *testing.T) {
	for _, s := range []string{"staff", "all", "off"} {
		if p, err := ParseMFAPolicy(s); err != nil || string(p) != s {
			t.Errorf("ParseMFAPolicy(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "Staff", "none", "yes"} {
		if _, err := ParseMFAPolicy(s); !errors.Is(err, ErrBadMFAPolicy) {
			t.Errorf("ParseMFAPolicy(%q) = %v, want ErrBadMFAPolicy", s, err)
		}
	}
}
