package casebook

import "fmt"

// FormatSize prints a byte count in decimal units, as people read file sizes (2.1 MB);
// every page, mail and chat answer says sizes the same way.
func FormatSize(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d bytes", n)
	}
	v, unit := float64(n)/1000, "kB"
	for _, u := range []string{"MB", "GB", "TB", "PB", "EB"} {
		// %.1f rounds 999.95 up to 1000.0: step up a unit before that happens.
		if v < 999.95 {
			break
		}
		v, unit = v/1000, u
	}
	return fmt.Sprintf("%.1f %s", v, unit)
}
