package password

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		context []string
		ok      bool
	}{
		{"long passphrase", "violet staple river lantern", nil, true},
		{"15 characters exactly", "tulip-orbit-931", nil, true},
		{"64 characters", "a long sentence about a kettle that sings at dawn in the kitchen", nil, true},
		{"no composition rules: all lowercase", "maplesyrupgallery", nil, true},
		{"unicode counts characters not bytes", "éééééééééééééé", nil, false},
		{"14 characters", "tulip-orbit-93", nil, false},
		{"too long", string(make([]byte, MaxLength+1)), nil, false},
		{"listed", "passwordpassword", nil, false},
		{"listed with spaces and case", "Correct Horse Battery Staple", nil, false},
		{"listed word repeated", "qwertyqwertyqwerty", nil, false},
		{"listed word wrapped in digits", "2024password2024!", nil, false},
		{"keyboard walk", "qwertyuiopasdfghjkl", nil, false},
		{"digits only", "123456789012345", nil, false},
		{"few distinct characters", "abababababababab", nil, false},
		{"short unit repeated", "abcdeabcdeabcde", nil, false},
		{"contains the email", "alice@acme.example rocks", []string{"alice@acme.example", "alice"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.pw, tt.context...)
			if tt.ok && err != nil {
				t.Errorf("Check(%q) = %v, want nil", tt.pw, err)
			}
			if !tt.ok && !errors.Is(err, ErrWeak) {
				t.Errorf("Check(%q) = %v, want ErrWeak", tt.pw, err)
			}
		})
	}
}
