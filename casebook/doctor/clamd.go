package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// ClamdProbe is what the clamd check asks of the malware scanner; clamav.Client is one.
type ClamdProbe interface {
	Ping(ctx context.Context) error
	// Version returns clamd's VERSION answer.
	Version(ctx context.Context) (string, error)
	String() string
}

// ClamdMaxAge is how old signatures may be before the check warns: clamd itself
// warns after 7 days, and freshclam normally updates them several times a day.
const ClamdMaxAge = 7 * 24 * time.Hour

// Clamd checks the malware scanner: it answers PING, and its VERSION names the
// engine and a signature database younger than maxAge at now.
func Clamd(p ClamdProbe, now time.Time, maxAge time.Duration) Check {
	return Check{Name: "clamd", Run: func(ctx context.Context) (string, error) {
		if err := p.Ping(ctx); err != nil {
			return "", fmt.Errorf("no answer from clamd at %s: is clamd running and --clamd right? Files cannot be added until it answers (%w)", p, err)
		}
		v, err := p.Version(ctx)
		if err != nil {
			return "", fmt.Errorf("clamd at %s answers PING but not VERSION: %w", p, err)
		}
		engine, db, date, ok := parseClamdVersion(v)
		if !ok {
			return "", Warning("%s at %s answers, but names no signature database (%q): only local signatures are loaded; run freshclam", engine, p, v)
		}
		age := now.Sub(date)
		detail := fmt.Sprintf("%s at %s answers; signatures %s of %s (%s old)", engine, p, db, date.Format("2 Jan 2006 15:04"), days(age))
		if age > maxAge {
			return "", Warning("%s: older than %s, is freshclam running?", detail, days(maxAge))
		}
		return detail, nil
	}}
}

// parseClamdVersion splits "ClamAV 1.4.6/27474/Thu Nov 27 09:32:11 2026" into the
// engine, the database version and its date. Without an official database clamd
// answers only "ClamAV 1.4.6", and ok is false.
func parseClamdVersion(v string) (engine, db string, date time.Time, ok bool) {
	parts := strings.SplitN(v, "/", 3)
	engine = strings.Replace(parts[0], "ClamAV ", "clamd ", 1)
	if len(parts) < 3 {
		return engine, "", time.Time{}, false
	}
	// clamd prints the date with ctime(3), in its local time zone.
	t, err := time.ParseInLocation("Mon Jan _2 15:04:05 2006", strings.TrimSpace(parts[2]), time.Local)
	if err != nil {
		return engine, "", time.Time{}, false
	}
	return engine, parts[1], t, true
}

func days(d time.Duration) string {
	n := int(d.Hours() / 24)
	if n == 1 {
		return "1 day"
	}
	if n < 1 {
		return "under a day"
	}
	return fmt.Sprintf("%d days", n)
}

// ClamdOff is the check when no scanner is configured: a warning, since files are
// then stored unscanned.
func ClamdOff() Check {
	return Check{Name: "clamd", Run: func(context.Context) (string, error) {
		return "", Warning("not configured (--clamd): files are stored without a malware scan")
	}}
}
