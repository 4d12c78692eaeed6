package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/failpoint"
	"github.com/casebookhq/casebook/casebook/syncbuf"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
)

// TestServeKilledAtEveryStep kills `casebook serve` with SIGKILL at each step of the
// email write path in turn: the raw copy, then the attachment, spooled, fsynced,
// renamed and placed (its directory fsynced in a shared round); the mail kept before
// it is matched; the update committed but the mail not yet filed. Each time it starts
// serve again and checks that the reply was added exactly once, that its raw copy and
// its file read back intact, that every blob in the store is named by a row (a retry
// stores the same content under the same name) and that no temporary file is left.
func TestServeKilledAtEveryStep(t *testing.T) {
	steps := []string{
		"blob.spooled", "blob.synced", "blob.renamed", "blob.placed", "ingest.kept",
		"blob.spooled:2", "blob.synced:2", "blob.renamed:2", "blob.placed:2", "ingest.committed",
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			db, st, cases, srv := mailSetup(t, 1)
			from, to := &mail.Address{Address: "alice@acme.example"}, &mail.Address{Address: "support@support.example"}
			r := demo.Reply{Case: cases[0], Text: "the scan", Files: []demo.Attachment{{Name: "scan.txt", ContentType: "text/plain",
				Body: bytes.Repeat([]byte("scan line\n"), 20<<10)}}}
			raw, err := demo.Compose(r, from, to, time.Now(), "<crash@acme.example>")
			if err != nil {
				t.Fatal(err)
			}
			if err := srv.Append("INBOX", demo.Stamp(raw, "acme.example"), time.Now()); err != nil {
				t.Fatal(err)
			}
			account := url.URL{Scheme: "imap", User: url.UserPassword(srv.User, srv.Password), Host: srv.Addr, Path: "/INBOX", RawQuery: "tls=none"}
			dataDir := t.TempDir()
			args := []string{"serve", "--imap", account.String(), "--http=", "--admin=", "--database-url", db,
				"--data-dir", dataDir, "--imap-spool-dir", t.TempDir(), "--trusted-authserv-id", demo.AuthservID}

			killedAt(t, step, args)
			if act, err := st.ActivityOf(ctx, "email", "owner_notification"); err != nil || act.Updates > 1 {
				t.Fatalf("after the kill: %+v, %v", act, err)
			}

			// Start again, in this process, until the reply is added and filed.
			sctx, cancel := context.WithCancel(ctx)
			var stderr syncbuf.Buffer
			exit := make(chan int, 1)
			go func() { exit <- run(sctx, args, io.Discard, &stderr) }()
			deadline := time.Now().Add(time.Minute)
			for {
				act, err := st.ActivityOf(ctx, "email", "owner_notification")
				if err != nil {
					t.Fatal(err)
				}
				processed, _ := srv.Count("Casebook/Processed")
				if act.Updates >= 1 && processed == 1 {
					break
				}
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("after the restart: %+v, %d filed\n%s", act, processed, stderr.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if code := <-exit; code != 0 {
				t.Fatalf("serve exited %d:\n%s", code, stderr.String())
			}

			act, err := st.ActivityOf(ctx, "email", "owner_notification")
			if err != nil || act.Updates != 1 || act.Attachments != 1 || act.Quarantined != 0 {
				t.Errorf("after the restart: %+v, %v; want one update with one file and no quarantine", act, err)
			}
			if inbox, _ := srv.Count("INBOX"); inbox != 0 {
				t.Errorf("INBOX still holds %d", inbox)
			}
			store, err := blob.Open(dataDir)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := casebook.VerifyBlobs(ctx, st, store, nil)
			if err != nil || rep.Checked != 2 || len(rep.Problems) != 0 {
				t.Errorf("blobs verify: %+v, %v; want the raw copy and the file, intact", rep, err)
			}
			var keys []string
			if err := store.Backend().Walk(ctx, func(b casebook.BlobInfo) error { keys = append(keys, b.Key); return nil }); err != nil {
				t.Fatal(err)
			}
			named, err := st.BlobsNamed(ctx, keys)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if !named[k] {
					t.Errorf("blob %s is named by no row", k)
				}
			}
			if left, _ := os.ReadDir(filepath.Join(dataDir, "tmp")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// killedAt runs serve with args in a process of its own, armed to kill itself at
// step, and waits for the kill.
func killedAt(t *testing.T, step string, args []string) {
	t.Helper()
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t") {
			t.Fatalf("argument %q cannot pass through CASEBOOK_SERVE_ARGS", a)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeProcess$")
	cmd.Env = append(environWithout("CASEBOOK_"), "CASEBOOK_SERVE_PROCESS=1",
		"CASEBOOK_SERVE_ARGS="+strings.Join(args, " "), failpoint.Variable+"="+step)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !killedBy(ee, syscall.SIGKILL) {
			t.Fatalf("serve ended with %v before reaching %s:\n%s", err, step, stderr.String())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("serve never reached %s:\n%s", step, stderr.String())
	}
}

func killedBy(ee *exec.ExitError, sig syscall.Signal) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
