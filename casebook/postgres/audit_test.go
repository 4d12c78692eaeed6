package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

var auditKey = []byte("0123456789abcdef0123456789abcdef")

// legacyHash is the unkeyed rule an attacker without the key can recompute.
func legacyHash(e casebook.AuditEntry) string {
	h := sha256.New()
	field := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	opt := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	field(e.PrevHash)
	field(e.At.UTC().Format(time.RFC3339Nano))
	field(opt(e.UserID))
	field(opt(e.OrgID))
	field(e.Action)
	field(e.Object)
	field(e.Outcome)
	field(e.IP)
	field(e.UserAgent)
	return hex.EncodeToString(h.Sum(nil))
}

// keyedLog writes three unkeyed rows as before the key, then five keyed ones, and
// returns the store (with the key) and the anchor of the newest row.
func keyedLog(t *testing.T) (*postgres.Store, postgres.AuditAnchor) {
	t.Helper()
	st := pgtest.Store(t)
	ctx := context.Background()
	for i := range 3 {
		if err := st.Audit(ctx, casebook.AuditEntry{Action: "login", Object: fmt.Sprintf("user:%d@a.test", i), Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetAuditKey(auditKey); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := st.Audit(ctx, casebook.AuditEntry{Action: "case_view", Object: fmt.Sprintf("CASE-%06d", i+1), Outcome: "success", IP: "cli", OSUser: "sam"}); err != nil {
			t.Fatal(err)
		}
	}
	a, err := st.LatestAuditAnchor(ctx)
	if err != nil || a.ID == 0 {
		t.Fatalf("anchor %+v, %v", a, err)
	}
	if err := st.VerifyAuditChain(ctx, a); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	return st, a
}

func TestAuditChainDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor)
		// anchored says the check is given the anchor; without one some attacks
		// cannot be seen, which is why serve logs anchors.
		anchored bool
	}{
		{"edited keyed row", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			st.DB().MustExec(`UPDATE audit_log SET outcome = 'denied' WHERE id = $1`, a.ID-2)
		}, false},
		{"edited legacy row", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			st.DB().MustExec(`UPDATE audit_log SET object = 'user:x@a.test' WHERE id = (SELECT min(id) FROM audit_log)`)
		}, false},
		{"deleted middle row", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			st.DB().MustExec(`DELETE FROM audit_log WHERE id = $1`, a.ID-3)
		}, false},
		{"deleted tail rows", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			st.DB().MustExec(`DELETE FROM audit_log WHERE id > $1`, a.ID-2)
		}, true},
		{"edited row, chain recomputed without the key", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			// The attacker rewrites every row by the unkeyed rule, which alone they can
			// compute, and marks them all unkeyed.
			st.DB().MustExec(`UPDATE audit_log SET outcome = 'denied', chain_version = 1 WHERE id = $1`, a.ID-1)
			st.DB().MustExec(`UPDATE audit_log SET chain_version = 1`)
			rechain(t, st, func(e casebook.AuditEntry) string { return legacyHash(e) })
		}, false},
		{"edited row, chain recomputed with a guessed key", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			st.DB().MustExec(`UPDATE audit_log SET outcome = 'denied' WHERE id = $1`, a.ID-1)
			rechain(t, st, func(e casebook.AuditEntry) string {
				s := sha256.Sum256([]byte(legacyHash(e) + "guess"))
				return hex.EncodeToString(s[:])
			})
		}, false},
		{"unkeyed row appended after keyed rows", func(t *testing.T, st *postgres.Store, a postgres.AuditAnchor) {
			e := casebook.AuditEntry{At: time.Now().UTC().Truncate(time.Microsecond), Action: "login", Outcome: "success", PrevHash: a.Hash}
			st.DB().MustExec(`INSERT INTO audit_log (at, action, outcome, prev_hash, hash, chain_version) VALUES ($1, $2, $3, $4, $5, 1)`,
				e.At, e.Action, e.Outcome, e.PrevHash, legacyHash(e))
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, a := keyedLog(t)
			tt.tamper(t, st, a)
			var anchors []postgres.AuditAnchor
			if tt.anchored {
				anchors = append(anchors, a)
			}
			if err := st.VerifyAuditChain(ctx, anchors...); !errors.Is(err, postgres.ErrAuditTampered) {
				t.Errorf("verify = %v, want tampering detected", err)
			}
		})
	}
}

// rechain recomputes every row's prev_hash and hash, oldest first, with hash.
func rechain(t *testing.T, st *postgres.Store, hash func(casebook.AuditEntry) string) {
	t.Helper()
	rows, err := st.AuditLog(context.Background(), postgres.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	prev := ""
	for _, e := range rows {
		e.PrevHash = prev
		e.Hash = hash(e)
		st.DB().MustExec(`UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1`, e.ID, e.PrevHash, e.Hash)
		prev = e.Hash
	}
}

func TestAuditKeyRules(t *testing.T) {
	ctx := context.Background()
	st, a := keyedLog(t)
	// Without the key, keyed rows can be neither written nor checked.
	plain, err := postgres.Open(ctx, pgtest.URLFor(currentDB(t, st)))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.Audit(ctx, casebook.AuditEntry{Action: "login", Outcome: "success"}); !errors.Is(err, postgres.ErrAuditKeyRequired) {
		t.Errorf("unkeyed append after keyed rows: %v", err)
	}
	if err := plain.VerifyAuditChain(ctx); !errors.Is(err, postgres.ErrAuditKeyRequired) {
		t.Errorf("verify without the key: %v", err)
	}
	if err := st.SetAuditKey([]byte("short")); err == nil {
		t.Error("a 5-byte key was accepted")
	}
	// A wrong key is a failed check, not a pass.
	wrong, _ := postgres.Open(ctx, pgtest.URLFor(currentDB(t, st)))
	defer wrong.Close()
	wrong.SetAuditKey([]byte("fedcba9876543210fedcba9876543210"))
	if err := wrong.VerifyAuditChain(ctx, a); !errors.Is(err, postgres.ErrAuditTampered) {
		t.Errorf("verify with a wrong key: %v", err)
	}
	for _, s := range []string{"", "12", "x:" + a.Hash, "0:" + a.Hash, "3:abc"} {
		if _, err := postgres.ParseAuditAnchor(s); err == nil {
			t.Errorf("anchor %q accepted", s)
		}
	}
	if got, err := postgres.ParseAuditAnchor(a.String()); err != nil || got != a {
		t.Errorf("anchor round trip: %+v, %v", got, err)
	}
}

func currentDB(t *testing.T, st *postgres.Store) string {
	t.Helper()
	var name string
	if err := st.DB().Get(&name, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	return name
}
