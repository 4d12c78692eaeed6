package doctor

import (
	"context"
	"fmt"
	"time"
)

// Database is what the database checks need (casebook/postgres.Store).
type Database interface {
	Ping(ctx context.Context) error
	CheckSchema(ctx context.Context) error
	Now(ctx context.Context) (time.Time, error)
}

// Postgres checks the database answers and has exactly the schema this casebook knows.
// open connects (the store's own error says whether the server is down or the login
// was refused); the check closes what it opened.
func Postgres(open func(ctx context.Context) (Database, func(), error), where string) Check {
	return Check{Name: "postgres", Run: func(ctx context.Context) (string, error) {
		db, closeDB, err := open(ctx)
		if err != nil {
			return "", err
		}
		defer closeDB()
		if err := db.Ping(ctx); err != nil {
			return "", fmt.Errorf("cannot reach PostgreSQL at %s: %w", where, err)
		}
		if err := db.CheckSchema(ctx); err != nil {
			return "", err
		}
		return "reachable at " + where + ", schema up to date", nil
	}}
}

// Clock compares this machine's clock with the database's. Both stamp the same rows
// (updates, sessions, reply-token expiry), so a skew shows as mail that seems to come
// from the future and sessions that end early. now is the local clock.
func Clock(open func(ctx context.Context) (Database, func(), error), now func() time.Time, warnAt, failAt time.Duration) Check {
	return Check{Name: "clock", Run: func(ctx context.Context) (string, error) {
		db, closeDB, err := open(ctx)
		if err != nil {
			return "", fmt.Errorf("cannot compare clocks: %w", err)
		}
		defer closeDB()
		// Warm the connection so the timed query measures one round trip only.
		if err := db.Ping(ctx); err != nil {
			return "", fmt.Errorf("cannot compare clocks: %w", err)
		}
		t0 := now()
		dbNow, err := db.Now(ctx)
		t1 := now()
		if err != nil {
			return "", fmt.Errorf("cannot compare clocks: %w", err)
		}
		// The server read its clock somewhere inside the round trip: take the middle.
		rtt := t1.Sub(t0)
		skew := t0.Add(rtt / 2).Sub(dbNow)
		abs := skew.Abs()
		desc := fmt.Sprintf("this machine's clock is %s %s the database's (±%s)", abs.Round(time.Millisecond), aheadOrBehind(skew), (rtt / 2).Round(time.Millisecond))
		switch {
		case abs >= failAt:
			return "", fmt.Errorf("%s: run time synchronisation (chrony or systemd-timesyncd) on both hosts", desc)
		case abs >= warnAt:
			return "", Warning("%s: run time synchronisation (chrony or systemd-timesyncd) on both hosts", desc)
		}
		if abs < time.Millisecond {
			return "in step with the database's (less than 1ms apart)", nil
		}
		return fmt.Sprintf("within %s of the database's", abs.Round(time.Millisecond)), nil
	}}
}

func aheadOrBehind(skew time.Duration) string {
	if skew < 0 {
		return "behind"
	}
	return "ahead of"
}
