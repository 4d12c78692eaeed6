package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/clamav"
	"github.com/casebookhq/casebook/casebook/clamav/clamdtest"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is an org with a customer, a stranger of another org, a staff owner and one case.
type fixture struct {
	st       *postgres.Store
	blobs    *blob.Store
	svc      *casebook.Service
	org      casebook.Org
	other    casebook.Org
	customer casebook.User
	stranger casebook.User
	owner    casebook.User
	c        casebook.Case
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: pgtest.Store(t)}
	var err error
	if f.blobs, err = blob.Open(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{MaxFileSize: 1 << 20})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.org, err = f.st.AddOrg(ctx, "Acme Health", "acme.test")
	must(err)
	f.other, err = f.st.AddOrg(ctx, "Other Clinic", "other.test")
	must(err)
	f.customer, err = f.st.AddUser(ctx, postgres.NewUser{OrgID: &f.org.ID, Email: "Alice@acme.test", Name: "Alice"})
	must(err)
	f.stranger, err = f.st.AddUser(ctx, postgres.NewUser{OrgID: &f.other.ID, Email: "eve@other.test"})
	must(err)
	f.owner, err = f.st.AddUser(ctx, postgres.NewUser{Email: "sam@support.test", Name: "Sam", Staff: true})
	must(err)
	f.c, err = f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.org.ID, RequesterID: f.customer.ID, OwnerID: f.owner.ID, Subject: "Lab results"})
	must(err)
	return f
}

func (f *fixture) update(ext string, files ...casebook.File) casebook.Update {
	return casebook.Update{
		Source:     casebook.SourceEmail,
		ExternalID: ext,
		CaseNumber: f.c.Number,
		Author:     casebook.Author{Kind: casebook.IdentityEmail, Value: "alice@acme.test"},
		Body:       "here you go",
		Files:      casebook.Files(files...),
	}
}

func file(name string, body []byte) casebook.File {
	return casebook.File{Name: name, Body: bytes.NewReader(body)}
}

func count(t testing.TB, st *postgres.Store, q string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

func blobCount(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		// Blobs live in two-letter fan-out directories; tmp/, gc/ and key-ids are not blobs.
		if err == nil && !d.IsDir() && len(filepath.Dir(rel)) == 2 {
			n++
		}
		return nil
	})
	return n
}

// sweptClean checks that every blob left in f's store is named by no row, so that a
// sweep once the grace period is over removes them all.
func sweptClean(t testing.TB, f *fixture) {
	t.Helper()
	later := func() time.Time { return time.Now().Add(casebook.DefaultBlobGrace + time.Minute) }
	rep, err := casebook.SweepBlobs(context.Background(), f.st, f.blobs, casebook.SweepOptions{Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if n := blobCount(t, f.blobs.Backend().(*blob.Dir).Root()); n != 0 || rep.Removed != rep.Unnamed {
		t.Errorf("%d blobs left after the sweep (%+v)", n, rep)
	}
}

func TestAddUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pdf := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 5000)...)
	out, err := f.svc.AddUpdate(ctx, f.update("m1", file("../../scan.pdf", pdf), file("note\r\n.txt", []byte("hello"))))
	if err != nil {
		t.Fatal(err)
	}
	if out.Result != casebook.ResultAdded || len(out.Attachments) != 2 {
		t.Fatalf("outcome = %+v", out)
	}
	as, err := f.st.AttachmentsForCase(ctx, f.c.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pdf)
	if len(as) != 2 || as[0].Filename != "scan.pdf" || as[0].SHA256 != hex.EncodeToString(sum[:]) ||
		as[0].ContentType != "application/pdf" || as[0].Size != int64(len(pdf)) || as[1].Filename != "note.txt" {
		t.Fatalf("attachments = %+v", as)
	}
	rc, err := f.blobs.Open(ctx, as[0].BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, pdf) {
		t.Error("blob content differs")
	}
	if n := count(t, f.st, `SELECT count(*) FROM outbox WHERE kind = 'owner_notification' AND recipient = 'sam@support.test' AND update_id = $1`, out.UpdateID); n != 1 {
		t.Errorf("owner notifications = %d, want 1 (one per update, not per file)", n)
	}
	c, _ := f.st.CaseByNumber(ctx, f.c.Number)
	if c.Attachments != 2 || !c.UpdatedAt.After(f.c.UpdatedAt) {
		t.Errorf("case after update: %d attachments, updated %v (before %v)", c.Attachments, c.UpdatedAt, f.c.UpdatedAt)
	}
	again, err := f.svc.AddUpdate(ctx, f.update("m1", file("scan.pdf", pdf)))
	if err != nil || again.Result != casebook.ResultDuplicate || again.UpdateID != out.UpdateID {
		t.Fatalf("replay = %+v, %v", again, err)
	}
	if n := count(t, f.st, `SELECT count(*) FROM attachments`); n != 2 {
		t.Errorf("attachments after replay = %d", n)
	}
}

// TestAddUpdateConcurrentReplay adds the same (source, external id) from 20 goroutines.
func TestAddUpdateConcurrentReplay(t *testing.T) {
	f := newFixture(t)
	body := bytes.Repeat([]byte("concurrent "), 10000)
	var wg sync.WaitGroup
	results := make([]casebook.Result, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() {
			out, err := f.svc.AddUpdate(context.Background(), f.update("same", file("a.txt", body), file("b.txt", []byte("b"))))
			results[i], errs[i] = out.Result, err
		})
	}
	wg.Wait()
	added, dup := 0, 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		switch results[i] {
		case casebook.ResultAdded:
			added++
		case casebook.ResultDuplicate:
			dup++
		}
	}
	if added != 1 || dup != 19 {
		t.Errorf("added %d, duplicate %d; want 1 and 19", added, dup)
	}
	if n := count(t, f.st, `SELECT count(*) FROM updates WHERE external_id = 'same'`); n != 1 {
		t.Errorf("updates = %d", n)
	}
	if n := count(t, f.st, `SELECT count(*) FROM attachments`); n != 2 {
		t.Errorf("attachments = %d", n)
	}
	if n := count(t, f.st, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox rows = %d", n)
	}
}

// TestAddUpdateFinish: a channel that learns its external id, text and meta only at
// the end of its input (email read once) hands them over in Finish, after its files;
// the commit finds a replay, and a Finish that fails or names no id commits nothing.
func TestAddUpdateFinish(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	finishing := func(ext string, err error) casebook.Update {
		u := f.update("", file("scan.txt", []byte("read once")))
		u.Body = ""
		u.Meta = map[string]string{"subject": "scan"}
		u.Finish = func(u *casebook.Update) error {
			u.ExternalID, u.Body = ext, "the text, read last"
			u.Meta["digest"] = ext
			return err
		}
		return u
	}
	first, err := f.svc.AddUpdate(ctx, finishing("late", nil))
	if err != nil || first.Result != casebook.ResultAdded {
		t.Fatalf("first = %+v, %v", first, err)
	}
	var body, meta string
	if err := f.st.DB().QueryRow(`SELECT body, meta->>'digest' FROM updates WHERE external_id = 'late'`).Scan(&body, &meta); err != nil {
		t.Fatal(err)
	}
	if body != "the text, read last" || meta != "late" {
		t.Errorf("stored body %q, digest %q", body, meta)
	}
	tests := []struct {
		name    string
		u       casebook.Update
		want    casebook.Result
		wantErr error
	}{
		{"a replay", finishing("late", nil), casebook.ResultDuplicate, nil},
		{"the read fails", finishing("other", errors.New("spool lost")), "", nil},
		{"no id once read", finishing("", nil), "", casebook.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.svc.AddUpdate(ctx, tt.u)
			if out.Result != tt.want || (tt.want == "") != (err != nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("outcome %+v, %v; want %q, %v", out, err, tt.want, tt.wantErr)
			}
			if tt.want == casebook.ResultDuplicate && out.UpdateID != first.UpdateID {
				t.Errorf("replay names update %d, want %d", out.UpdateID, first.UpdateID)
			}
		})
	}
	if n := count(t, f.st, `SELECT count(*) FROM updates`); n != 1 {
		t.Errorf("updates = %d, want 1", n)
	}
	if n := count(t, f.st, `SELECT count(*) FROM outbox`); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

// TestCaseForUpdate: the case and its update's author, read together.
func TestCaseForUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	email := func(v string) casebook.Author { return casebook.Author{Kind: casebook.IdentityEmail, Value: v} }
	tests := []struct {
		name    string
		number  int64
		author  casebook.Author
		want    int64 // the author's user id, 0 for nobody
		wantErr error
	}{
		{"by email, in any case", f.c.Number, email(" ALICE@acme.test "), f.customer.ID, nil},
		{"by user id", f.c.Number, casebook.Author{UserID: f.owner.ID}, f.owner.ID, nil},
		{"an identity nobody holds", f.c.Number, email("nobody@acme.test"), 0, nil},
		{"no author", f.c.Number, casebook.Author{}, 0, nil},
		{"a user id that names nobody", f.c.Number, casebook.Author{UserID: 1 << 40}, 0, casebook.ErrUserNotFound},
		{"no such case", f.c.Number + 1000, email("alice@acme.test"), 0, casebook.ErrCaseNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, u, err := f.st.CaseForUpdate(ctx, tt.number, tt.author)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if c.ID != f.c.ID || c.OrgDomain != "acme.test" || c.Owner != "sam@support.test" {
				t.Errorf("case %+v", c)
			}
			switch {
			case tt.want == 0 && u != nil:
				t.Errorf("author %+v, want nobody", u)
			case tt.want != 0 && (u == nil || u.ID != tt.want):
				t.Errorf("author %+v, want user %d", u, tt.want)
			}
		})
	}
	if _, u, _ := f.st.CaseForUpdate(ctx, f.c.Number, email("alice@acme.test")); u == nil || !u.InOrg(f.org.ID) || u.Staff || u.Disabled || u.Email != "alice@acme.test" {
		t.Errorf("alice read as %+v", u)
	}
}

// failingStore fails the commit once: a crash between writing the blobs and the commit.
type failingStore struct {
	*postgres.Store
	fail bool
}

func (s *failingStore) CommitUpdate(ctx context.Context, u casebook.NewUpdate) (int64, error) {
	if s.fail {
		s.fail = false
		return 0, errors.New("injected: connection lost before commit")
	}
	return s.Store.CommitUpdate(ctx, u)
}

func TestAddUpdateFailureBeforeCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fs := &failingStore{Store: f.st, fail: true}
	svc := casebook.NewService(fs, f.blobs, casebook.Options{})
	data := []byte("unique content for the failure test")
	if _, err := svc.AddUpdate(ctx, f.update("crash", file("a.txt", data))); err == nil {
		t.Fatal("want the injected error")
	}
	for _, q := range []string{`SELECT count(*) FROM updates`, `SELECT count(*) FROM attachments`, `SELECT count(*) FROM outbox`} {
		if n := count(t, f.st, q); n != 0 {
			t.Errorf("%s = %d after a failed commit", q, n)
		}
	}
	// The blob stays until the sweep: the write path never deletes.
	sweptClean(t, f)
	out, err := svc.AddUpdate(ctx, f.update("crash", file("a.txt", data)))
	if err != nil || out.Result != casebook.ResultAdded {
		t.Fatalf("retry = %+v, %v", out, err)
	}
	if n := count(t, f.st, `SELECT count(*) FROM attachments`); n != 1 {
		t.Errorf("attachments after retry = %d", n)
	}
}

func TestAddUpdateRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	closed, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.org.ID, RequesterID: f.customer.ID, OwnerID: f.owner.ID, Subject: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetCaseStatus(ctx, closed.Number, casebook.StatusClosed); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("z"), 1<<20+1)
	off, err := f.st.AddUser(ctx, postgres.NewUser{OrgID: &f.org.ID, Email: "off@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.AddIdentity(ctx, casebook.Identity{Kind: casebook.IdentitySlack, Value: "UOFF", UserID: off.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.SetUserDisabled(ctx, off.ID, true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*casebook.Update)
		want   error
	}{
		{"unknown case", func(u *casebook.Update) { u.CaseNumber = 999999 }, casebook.ErrCaseNotFound},
		{"closed case", func(u *casebook.Update) { u.CaseNumber = closed.Number }, casebook.ErrCaseClosed},
		{"file over the cap", func(u *casebook.Update) { u.Files = casebook.Files(file("ok.txt", []byte("ok")), file("big.bin", big)) }, casebook.ErrTooLarge},
		{"sender of another org", func(u *casebook.Update) { u.Author.Value = "eve@other.test" }, casebook.ErrNotAllowed},
		{"unknown sender", func(u *casebook.Update) { u.Author.Value = "nobody@acme.test" }, casebook.ErrNotAllowed},
		{"proven sender at another domain", func(u *casebook.Update) { u.Author.Value = "x@evil.test"; u.ProvenRecipient = true }, casebook.ErrNotAllowed},
		{"channel bound to another org", func(u *casebook.Update) {
			u.Source, u.ChannelOrgID, u.Author = casebook.SourceSlack, f.other.ID, casebook.Author{Kind: casebook.IdentitySlack, Value: "U1"}
		}, casebook.ErrCaseNotFound},
		{"no external id", func(u *casebook.Update) { u.ExternalID = "" }, casebook.ErrInvalidInput},
		{"disabled sender", func(u *casebook.Update) { u.Author.Value = "off@acme.test" }, casebook.ErrUserDisabled},
		{"disabled proven sender", func(u *casebook.Update) { u.Author.Value = "off@acme.test"; u.ProvenRecipient = true }, casebook.ErrUserDisabled},
		{"disabled web user", func(u *casebook.Update) { u.Source, u.Author = casebook.SourceWeb, casebook.Author{UserID: off.ID} }, casebook.ErrUserDisabled},
		{"disabled chat user in a bound channel", func(u *casebook.Update) {
			u.Source, u.ChannelOrgID, u.Author = casebook.SourceSlack, f.org.ID, casebook.Author{Kind: casebook.IdentitySlack, Value: "UOFF"}
		}, casebook.ErrUserDisabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := f.update("refused-" + tt.name)
			tt.change(&u)
			_, err := f.svc.AddUpdate(ctx, u)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			for _, q := range []string{`SELECT count(*) FROM updates`, `SELECT count(*) FROM attachments`, `SELECT count(*) FROM outbox`} {
				if n := count(t, f.st, q); n != 0 {
					t.Errorf("%s = %d after a refusal", q, n)
				}
			}
			sweptClean(t, f)
		})
	}
}

func TestAddUpdateAllowed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(*casebook.Update)
	}{
		{"proven sender at the org's domain", func(u *casebook.Update) { u.Author.Value = "bob@ACME.test"; u.ProvenRecipient = true }},
		{"bound channel", func(u *casebook.Update) {
			u.Source, u.ChannelOrgID, u.Author = casebook.SourceSlack, f.org.ID, casebook.Author{Kind: casebook.IdentitySlack, Value: "U1", Name: "bob"}
		}},
		{"web user", func(u *casebook.Update) {
			u.Source, u.Author = casebook.SourceWeb, casebook.Author{UserID: f.customer.ID}
		}},
		{"staff", func(u *casebook.Update) { u.Author.Value = "sam@support.test" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := f.update("allowed-" + tt.name)
			tt.change(&u)
			if out, err := f.svc.AddUpdate(ctx, u); err != nil || out.Result != casebook.ResultAdded {
				t.Fatalf("AddUpdate = %+v, %v", out, err)
			}
		})
	}
}

func TestAddUpdateReopens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct {
		author string
		want   casebook.Status
	}{
		{"sam@support.test", casebook.StatusResolved},
		{"alice@acme.test", casebook.StatusOpen},
	}
	for i, tt := range tests {
		if _, err := f.st.SetCaseStatus(ctx, f.c.Number, casebook.StatusResolved); err != nil {
			t.Fatal(err)
		}
		u := f.update(fmt.Sprint("reopen-", i))
		u.Author.Value = tt.author
		if _, err := f.svc.AddUpdate(ctx, u); err != nil {
			t.Fatal(err)
		}
		c, _ := f.st.CaseByNumber(ctx, f.c.Number)
		if c.Status != tt.want {
			t.Errorf("after an update by %s: status %s, want %s", tt.author, c.Status, tt.want)
		}
	}
}

func TestCheckpointCommitsWithUpdate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	u := f.update("cp")
	u.Checkpoint = &casebook.Checkpoint{Channel: "imap", Key: "INBOX/1", Value: "42"}
	if _, err := f.svc.AddUpdate(ctx, u); err != nil {
		t.Fatal(err)
	}
	if v, err := f.st.Checkpoint(ctx, "imap", "INBOX/1"); err != nil || v != "42" {
		t.Fatalf("checkpoint = %q, %v", v, err)
	}
}

// BenchmarkAddUpdate adds one 100 KB file per update through the write path: plain,
// encrypted at rest, and encrypted and scanned by a real clamd, in one run, beside a
// bare one-row INSERT per transaction as the floor:
//
//	go test -run '^$' -bench 'AddUpdate$' -benchtime 3s ./casebook/postgres/
func BenchmarkAddUpdate(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	att := make([]byte, 100_000)
	rand.Read(att)
	encDir, err := blob.Open(b.TempDir(), blob.NewKey())
	if err != nil {
		b.Fatal(err)
	}
	scanner, err := clamav.Parse(clamdtest.Start(b).Addr)
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		svc  *casebook.Service
	}{
		{"AddUpdate_100KB", f.svc},
		{"AddUpdate_100KB_encrypted", casebook.NewService(f.st, encDir, casebook.Options{MaxFileSize: 1 << 20})},
		{"AddUpdate_100KB_encrypted_scanned", casebook.NewService(f.st, encDir, casebook.Options{MaxFileSize: 1 << 20, Scanner: scanner})},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(att)))
			// -count reruns this function on the same database: keep its ids apart.
			run := rand.Text()
			i := 0
			for b.Loop() {
				i++
				// A distinct file each time, so every iteration writes a new blob.
				copy(att, fmt.Sprintf("%020d", i))
				out, err := v.svc.AddUpdate(ctx, f.update(fmt.Sprint("bench-", run, i), file("scan.bin", att)))
				if err != nil || out.Result != casebook.ResultAdded {
					b.Fatal(out, err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
		})
	}
	b.Run("BareInsert", func(b *testing.B) {
		db := f.st.DB()
		if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, v text NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			tx, err := db.Begin()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(`INSERT INTO bench_bare (v) VALUES ($1)`, "x"); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
}

// BenchmarkAddUpdateHeap25MiB adds one 25 MiB file through an encrypting store and a
// real clamd, and reports how far the live heap rose above where it started (sampled
// every millisecond while the update runs): the bytes stream through the cipher and
// the scanner's pipe, never held whole.
//
//	go test -run '^$' -bench AddUpdateHeap25MiB -benchtime 3x ./casebook/postgres/
func BenchmarkAddUpdateHeap25MiB(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	encDir, err := blob.Open(b.TempDir(), blob.NewKey())
	if err != nil {
		b.Fatal(err)
	}
	scanner, err := clamav.Parse(clamdtest.Start(b).Addr)
	if err != nil {
		b.Fatal(err)
	}
	svc := casebook.NewService(f.st, encDir, casebook.Options{MaxFileSize: 26 << 20, Scanner: scanner})
	const size = 25 << 20
	run := rand.Text()
	var peak uint64
	i := 0
	for b.Loop() {
		i++
		b.StopTimer()
		runtime.GC()
		base := heapLive()
		stop, sampled := make(chan struct{}), make(chan uint64)
		go func() {
			var top uint64
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					sampled <- top
					return
				case <-t.C:
					if h := heapLive(); h > base && h-base > top {
						top = h - base
					}
				}
			}
		}()
		b.StartTimer()
		body := &patternReader{left: size, seed: byte(i)}
		out, err := svc.AddUpdate(ctx, f.update(fmt.Sprint("heap-", run, i), casebook.File{Name: "big.dcm", Body: body}))
		b.StopTimer()
		close(stop)
		peak = max(peak, <-sampled)
		if err != nil || out.Result != casebook.ResultAdded || out.Attachments[0].Size != size {
			b.Fatal(out, err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "heap-growth-MiB")
}

// patternReader yields left bytes of a pattern without holding them.
type patternReader struct {
	left int
	seed byte
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	n := min(len(b), p.left)
	for i := range n {
		b[i] = byte(p.left-i) ^ p.seed
	}
	p.left -= n
	return n, nil
}

// heapLive is the heap held by live and not yet swept objects.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
