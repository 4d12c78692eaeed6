package casebook_test

import (
	"testing"

	"github.com/casebookhq/casebook/casebook"
)

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 999: "999 bytes", 1000: "1.0 kB", 2500: "2.5 kB", 102400: "102.4 kB",
		1234567: "1.2 MB", 2_100_000: "2.1 MB", 999_949: "999.9 kB", 999_950: "1.0 MB",
		25 << 20: "26.2 MB", 3_000_000_000: "3.0 GB", 25 << 30: "26.8 GB",
	} {
		if got := casebook.FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
