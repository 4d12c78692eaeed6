package postgres_test

import (
	"errors"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// TestAddAccount: the user, its identity, its temporary password, the mail that
// carries it and the audit row are written together, or none of them.
func TestAddAccount(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	by := casebook.Actor{IP: "cli", OSUser: "root"}
	count := func(q string) int {
		t.Helper()
		var n int
		if err := f.st.DB().Get(&n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := func() [4]int {
		return [4]int{count(`SELECT count(*) FROM users`), count(`SELECT count(*) FROM reset_codes`),
			count(`SELECT count(*) FROM outbox WHERE kind = 'temporary_password'`), count(`SELECT count(*) FROM audit_log`)}
	}
	before := rows()
	u, code, err := casebook.AddAccount(ctx, f.st, by, casebook.NewAccount{OrgID: &f.org.ID, Email: "Bea@Acme.test", Name: "Bea"}, "support.test")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "bea@acme.test" || len(code) != 26 {
		t.Errorf("user %+v, code %q", u, code)
	}
	if got, want := rows(), [4]int{before[0] + 1, before[1] + 1, before[2] + 1, before[3] + 1}; got != want {
		t.Errorf("rows (users, codes, mails, audit) %v, want %v", got, want)
	}
	if ok, err := f.st.UseResetCode(ctx, u.ID, casebook.ResetCodeHash(code)); err != nil || !ok {
		t.Errorf("the temporary password does not work: %v %v", ok, err)
	}
	log, err := f.st.AuditLog(ctx, postgres.AuditFilter{UserID: u.ID})
	if err != nil || len(log) != 1 || log[0].Action != "reset_request" || log[0].OSUser != "root" {
		t.Errorf("audit: %+v %v", log, err)
	}

	before = rows()
	for _, tt := range []struct {
		name string
		a    casebook.NewAccount
		want error
	}{
		{"address taken", casebook.NewAccount{OrgID: &f.org.ID, Email: "bea@acme.test"}, casebook.ErrEmailTaken},
		{"customer without org", casebook.NewAccount{Email: "cy@acme.test"}, casebook.ErrInvalidInput},
		{"not an address", casebook.NewAccount{Staff: true, Email: "nobody"}, casebook.ErrInvalidInput},
	} {
		if _, _, err := casebook.AddAccount(ctx, f.st, by, tt.a, ""); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := rows(); got != before {
		t.Errorf("refused accounts left rows: %v, before %v", got, before)
	}
}
