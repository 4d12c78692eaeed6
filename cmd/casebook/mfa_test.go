package main

import (
	"context"
	"strings"
	"testing"

	"github.com/casebookhq/casebook/casebook/postgres"
)

// TestUserMFAReset: the reset removes the factor and the recovery codes, is audited
// with the operating-system user who ran it, and says so when there was nothing to
// remove.
func TestUserMFAReset(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	u := c.json("user", "add", "--staff", "--email", "sam@support.test", "--name", "Sam")
	id := int64(u["id"].(float64))
	ctx := context.Background()
	st, err := postgres.Open(ctx, c.url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.BeginSecondFactor(ctx, id, "plain:JBSWY3DPEHPK3PXP"); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.ConfirmSecondFactor(ctx, id, "plain:JBSWY3DPEHPK3PXP", 100, []string{"h1", "h2"}); !ok || err != nil {
		t.Fatalf("confirm: %v %v", ok, err)
	}

	tests := []struct {
		name      string
		email     string
		hadFactor bool
		outcome   string
	}{
		{"with a factor", "SAM@support.test", true, "success"},
		{"again", "sam@support.test", false, "no_factor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := c.json("user", "mfa-reset", tt.email)
			if out["email"] != "sam@support.test" || out["had_factor"] != tt.hadFactor {
				t.Errorf("output: %v", out)
			}
			rows, err := st.AuditLog(ctx, postgres.AuditFilter{UserID: id})
			if err != nil {
				t.Fatal(err)
			}
			last := rows[len(rows)-1]
			if last.Action != "mfa_reset" || last.Outcome != tt.outcome || last.IP != "cli" || last.OSUser == "" {
				t.Errorf("audit row: %+v", last)
			}
		})
	}
	var n int
	if err := st.DB().Get(&n, `SELECT (SELECT count(*) FROM mfa_factors) + (SELECT count(*) FROM mfa_recovery_codes)`); err != nil || n != 0 {
		t.Errorf("%d factor and recovery rows left (%v)", n, err)
	}
	if code, _, errOut := c.run("user", "mfa-reset", "nobody@support.test"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown user: exit %d: %s", code, errOut)
	}
	if code, _, _ := c.run("user", "mfa-reset"); code != 2 {
		t.Errorf("no email: exit %d, want 2", code)
	}
}

func TestServeRefusesBadMFAConfig(t *testing.T) {
	c := newCLI(t)
	c.json("migrate")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--require-mfa", "sometimes"}, "--require-mfa"},
		{[]string{"--mfa-key", "short"}, "--mfa-key"},
	} {
		code, _, errOut := c.run(append([]string{"serve", "--admin", "", "--http", "127.0.0.1:0"}, tt.args...)...)
		if code == 0 || !strings.Contains(errOut, tt.want) {
			t.Errorf("serve %v: exit %d: %s", tt.args, code, errOut)
		}
	}
}
