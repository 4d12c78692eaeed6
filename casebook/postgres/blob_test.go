package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/postgres"
)

// heldStore fails its first commit, after waiting for release: an update whose
// upload or commit fails while another update with the same bytes goes ahead.
type heldStore struct {
	*postgres.Store
	reached chan struct{}
	release chan struct{}
}

func (s *heldStore) CommitUpdate(ctx context.Context, u casebook.NewUpdate) (int64, error) {
	close(s.reached)
	<-s.release
	return 0, errors.New("injected: the upload failed before its commit")
}

// TestFailedUpdateKeepsSharedBlob is the race of issue 12: org B's update stores a
// file and then fails, while org A commits an update with the same bytes, in both
// orders. A's file must stay readable, and the sweep must keep it.
func TestFailedUpdateKeepsSharedBlob(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		for _, order := range []string{"A commits while B is held", "A commits before B stores"} {
			name := order
			if encrypted {
				name += ", encrypted"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				if encrypted {
					f.useKey(t, blob.NewKey())
				}
				ctx := context.Background()
				bCase, err := f.st.OpenCase(ctx, postgres.NewCase{OrgID: f.other.ID, RequesterID: f.stranger.ID, OwnerID: f.owner.ID, Subject: "B"})
				if err != nil {
					t.Fatal(err)
				}
				data := []byte("%PDF-1.4 the same referral letter, sent by two clinics")
				held := &heldStore{Store: f.st, reached: make(chan struct{}), release: make(chan struct{})}
				svcB := casebook.NewService(held, f.blobs, casebook.Options{})
				bErr := make(chan error, 1)
				startB := func() {
					go func() {
						_, err := svcB.AddUpdate(ctx, casebook.Update{Source: casebook.SourceEmail, ExternalID: "b", CaseNumber: bCase.Number,
							Author: casebook.Author{Kind: casebook.IdentityEmail, Value: "eve@other.test"}, Files: casebook.Files(file("b.pdf", data))})
						bErr <- err
					}()
					<-held.reached
				}
				addA := func() casebook.Outcome {
					out, err := f.svc.AddUpdate(ctx, f.update("a", file("a.pdf", data)))
					if err != nil {
						t.Fatal(err)
					}
					return out
				}
				var out casebook.Outcome
				if order == "A commits while B is held" {
					startB()
					out = addA()
				} else {
					out = addA()
					startB()
				}
				close(held.release)
				if err := <-bErr; err == nil {
					t.Fatal("B's update did not fail")
				}
				f.assertReadable(t, out.Attachments[0].BlobKey, data)
				// Even long after, the sweep keeps a blob a row names.
				f.age(t, out.Attachments[0].BlobKey, 48*time.Hour)
				rep, err := casebook.SweepBlobs(ctx, f.st, f.blobs, casebook.SweepOptions{})
				if err != nil || rep.Removed != 0 {
					t.Fatalf("sweep = %+v, %v", rep, err)
				}
				f.assertReadable(t, out.Attachments[0].BlobKey, data)
				vr, err := casebook.VerifyBlobs(ctx, f.st, f.blobs, nil)
				if err != nil || len(vr.Problems) != 0 {
					t.Errorf("verify = %+v, %v", vr, err)
				}
			})
		}
	}
}

// TestSweepAfterKill: a process killed between storing a file and committing its
// update leaves a blob no row names. The sweep leaves it alone within the grace period
// and removes it after; a dry run only reports it; named blobs stay.
func TestSweepAfterKill(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	named, err := f.svc.AddUpdate(ctx, f.update("kept", file("kept.txt", []byte("named by a row"))))
	if err != nil {
		t.Fatal(err)
	}
	// The kill: the blob is stored, the commit never happens.
	orphan, err := f.blobs.Put(ctx, bytes.NewReader([]byte("stored, never committed")), 100)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := func(d time.Duration) func() time.Time { return func() time.Time { return now.Add(d) } }
	steps := []struct {
		name        string
		opt         casebook.SweepOptions
		wantUnnamed int
		wantRemoved int
		orphanStays bool
	}{
		{"within the grace period", casebook.SweepOptions{Now: at(23 * time.Hour)}, 0, 0, true},
		{"dry run after it", casebook.SweepOptions{Now: at(25 * time.Hour), DryRun: true}, 1, 0, true},
		{"shorter grace, not yet", casebook.SweepOptions{Now: at(30 * time.Minute), Grace: time.Hour}, 0, 0, true},
		{"after it", casebook.SweepOptions{Now: at(25 * time.Hour)}, 1, 1, false},
	}
	for _, s := range steps {
		rep, err := casebook.SweepBlobs(ctx, f.st, f.blobs, s.opt)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if rep.Unnamed != s.wantUnnamed || rep.Removed != s.wantRemoved || rep.Skipped {
			t.Errorf("%s: report %+v", s.name, rep)
		}
		_, err = f.blobs.Open(ctx, orphan.Key)
		if stays := err == nil; stays != s.orphanStays {
			t.Errorf("%s: orphan present = %v", s.name, stays)
		}
	}
	f.assertReadable(t, named.Attachments[0].BlobKey, []byte("named by a row"))
}

// TestSweepOneInstance: while one sweep holds the lock, another does nothing.
func TestSweepOneInstance(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ok, err := f.st.WithLock(ctx, casebook.BlobSweepLock, time.Second, func(ctx context.Context) error {
		rep, err := casebook.SweepBlobs(ctx, f.st, f.blobs, casebook.SweepOptions{})
		if err != nil || !rep.Skipped {
			t.Errorf("second sweep = %+v, %v; want skipped", rep, err)
		}
		return nil
	})
	if err != nil || !ok {
		t.Fatalf("lock = %v, %v", ok, err)
	}
}

// TestVerifyNamesDamagedAndMissing: a tampered and a truncated encrypted blob, and a
// missing one, are each reported by name.
func TestVerifyNamesDamagedAndMissing(t *testing.T) {
	f := newFixture(t)
	f.useKey(t, blob.NewKey())
	ctx := context.Background()
	keys := map[string]string{}
	for _, n := range []string{"tampered", "truncated", "missing", "fine"} {
		out, err := f.svc.AddUpdate(ctx, f.update(n, file(n+".txt", bytes.Repeat([]byte(n), 30000))))
		if err != nil {
			t.Fatal(err)
		}
		keys[n] = out.Attachments[0].BlobKey
	}
	path := func(k string) string { return filepath.Join(f.blobs.Backend().(*blob.Dir).Root(), k[:2], k) }
	b, _ := os.ReadFile(path(keys["tampered"]))
	b[len(b)/2] ^= 0x40
	os.WriteFile(path(keys["tampered"]), b, 0o600)
	b, _ = os.ReadFile(path(keys["truncated"]))
	os.WriteFile(path(keys["truncated"]), b[:len(b)-100], 0o600)
	os.Remove(path(keys["missing"]))

	rep, err := casebook.VerifyBlobs(ctx, f.st, f.blobs, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range rep.Problems {
		got[p.Key] = p.Problem
	}
	want := map[string]string{keys["tampered"]: casebook.BlobDamaged, keys["truncated"]: casebook.BlobDamaged, keys["missing"]: casebook.BlobMissing}
	if len(got) != len(want) || rep.Checked != 4 {
		t.Fatalf("problems %v of %d checked, want %v", got, rep.Checked, want)
	}
	for k, p := range want {
		if got[k] != p {
			t.Errorf("%s: %q, want %q", k, got[k], p)
		}
	}
}

// TestEncryptConvertsPlaintext: blobs stored before the key are converted, the rows
// follow them, the plaintext copies go, and a second run has nothing to do.
func TestEncryptConvertsPlaintext(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	data := []byte("%PDF-1.4 stored before encryption was turned on")
	out, err := f.svc.AddUpdate(ctx, f.update("old", file("old.pdf", data)))
	if err != nil {
		t.Fatal(err)
	}
	plainKey := out.Attachments[0].BlobKey
	f.useKey(t, blob.NewKey())
	rep, err := casebook.EncryptBlobs(ctx, f.st, f.blobs, nil)
	if err != nil || rep.Plaintext != 1 || rep.Encrypted != 1 || rep.Rows != 1 {
		t.Fatalf("encrypt = %+v, %v", rep, err)
	}
	var newKey string
	if err := f.st.DB().Get(&newKey, `SELECT blob_key FROM attachments`); err != nil {
		t.Fatal(err)
	}
	if newKey == plainKey {
		t.Fatal("the row still names the plaintext blob")
	}
	f.assertReadable(t, newKey, data)
	if _, err := f.blobs.Open(ctx, plainKey); !errors.Is(err, casebook.ErrNotFound) {
		t.Errorf("plaintext copy still there: %v", err)
	}
	if rep, err := casebook.EncryptBlobs(ctx, f.st, f.blobs, nil); err != nil || rep.Plaintext != 0 {
		t.Errorf("second run = %+v, %v", rep, err)
	}
}

// useKey reopens f's blob store (same directory) with key and rebuilds the service.
func (f *fixture) useKey(t testing.TB, key *blob.Key) {
	t.Helper()
	d, err := blob.Open(f.blobs.Backend().(*blob.Dir).Root(), key)
	if err != nil {
		t.Fatal(err)
	}
	f.blobs = d
	f.svc = casebook.NewService(f.st, f.blobs, casebook.Options{MaxFileSize: 1 << 20})
}

func (f *fixture) assertReadable(t testing.TB, key string, want []byte) {
	t.Helper()
	rc, err := f.blobs.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("blob %s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob %s: %d bytes, %v", key, len(got), err)
	}
}

// age sets a blob's time back by d, as if it had been stored that long ago.
func (f *fixture) age(t testing.TB, key string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(filepath.Join(f.blobs.Backend().(*blob.Dir).Root(), key[:2], key), old, old); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxPasswordSealed: a queued temporary password is sealed in its row, opened
// for the worker, and scrubbed once sent.
func TestOutboxPasswordSealed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.st.SealSecretsWith(blob.NewKey())
	m := casebook.OutboxMail{Kind: casebook.MailTemporaryPassword, UserID: &f.customer.ID, Recipient: "alice@acme.test",
		MessageID: casebook.NewMessageID("test"), Data: casebook.TemporaryPasswordMail{Password: "correct horse battery", ExpiresAt: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if err := f.st.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	var data string
	f.st.DB().Get(&data, `SELECT data::text FROM outbox`)
	if bytes.Contains([]byte(data), []byte("correct horse")) {
		t.Fatalf("password in plaintext: %s", data)
	}
	es, err := f.st.ClaimOutbox(ctx, time.Now(), time.Minute, 10, 0)
	if err != nil || len(es) != 1 || es[0].Data.(casebook.TemporaryPasswordMail).Password != "correct horse battery" {
		t.Fatalf("claimed %+v, %v", es, err)
	}
	if err := f.st.MarkOutboxSent(ctx, es[0].ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.st.DB().Get(&data, `SELECT data::text FROM outbox`)
	if bytes.Contains([]byte(data), []byte("password")) {
		t.Errorf("password left after sending: %s", data)
	}
}
