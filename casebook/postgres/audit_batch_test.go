package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestAuditBatchChains(t *testing.T) {
	st := pgtest.Store(t)
	ctx := context.Background()
	if err := st.Audit(ctx, casebook.AuditEntry{Action: "login", Object: "user:a@b.test", Outcome: "success"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var es []casebook.AuditEntry
			for j := range 5 {
				es = append(es, casebook.AuditEntry{Action: "case_view", Object: fmt.Sprintf("CASE-%06d", i*10+j), Outcome: "success"})
			}
			if err := st.AuditBatch(ctx, es); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := st.VerifyAuditChain(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := st.AuditLog(ctx, postgres.AuditFilter{})
	if err != nil || len(rows) != 41 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	// An edit breaks the chain.
	st.DB().MustExec(`UPDATE audit_log SET outcome = 'denied' WHERE id = (SELECT max(id) - 3 FROM audit_log)`)
	if err := st.VerifyAuditChain(ctx); err == nil {
		t.Error("an edited row goes unnoticed")
	}
}
