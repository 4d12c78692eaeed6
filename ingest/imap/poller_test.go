package imap_test

import (
	"fmt"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/ingest"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

var (
	withMove    = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}}
	withoutMove = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}
)

func servers() []struct {
	name  string
	start func(t testing.TB) server
} {
	return []struct {
		name  string
		start func(t testing.TB) server
	}{
		{"memory", func(t testing.TB) server { return startMem(t, withMove) }},
		{"memory without MOVE", func(t testing.TB) server { return startMem(t, withoutMove) }},
		{"dovecot", func(t testing.TB) server { return startDovecot(t) }},
		// Without IDLE the poller polls; without MOVE it copies and expunges by UID.
		{"dovecot without IDLE and MOVE", func(t testing.TB) server {
			return startDovecotWith(t, dovecottest.Options{Config: "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS NAMESPACE"})
		}},
	}
}

// A reply lands on its case and is filed in Processed; an auto-reply is ignored and a
// stranger's mail quarantined, each filed in its folder; the same mail appended twice
// is stored once.
func TestFiling(t *testing.T) {
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) {
			e := newEnv(t)
			s := srv.start(t)
			s.append(t, "INBOX", e.reply("r1", 10<<10))
			s.append(t, "INBOX", autoReply(e.ref))
			s.append(t, "INBOX", mailFrom("mallory@other.example", "Re: "+e.ref, "m1", 0))
			e.poller(t, s.url("INBOX"), nil)
			waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1, "Casebook/Ignored": 1, "Casebook/Quarantine": 1})
			if u, f := e.updates(t); u != 1 || f != 1 {
				t.Errorf("updates, files = %d, %d; want 1, 1", u, f)
			}
			if n := e.quarantined(t, string(casebook.QuarantineKindQuarantined)); n != 1 {
				t.Errorf("quarantine records = %d, want 1", n)
			}
			if n := e.quarantined(t, string(casebook.QuarantineKindIgnored)); n != 1 {
				t.Errorf("ignored records = %d, want 1", n)
			}

			// Mail arriving while the poller waits, twice the same.
			dup := e.reply("r2", 0)
			s.append(t, "INBOX", dup)
			s.append(t, "INBOX", dup)
			waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 3})
			if u, _ := e.updates(t); u != 2 {
				t.Errorf("updates = %d, want 2 (the same mail twice is stored once)", u)
			}
		})
	}
}

// A message whose handling fails is tried MaxAttempts times, then quarantined, and the
// mail behind it is handled meanwhile.
func TestPoisonMessage(t *testing.T) {
	e := newEnv(t)
	s := startMem(t, withMove)
	poison := append([]byte("X-Poison: yes\r\n"), e.reply("p1", 0)...)
	s.append(t, "INBOX", poison)
	s.append(t, "INBOX", e.reply("after", 0))
	proc := &flaky{MailProcessor: e.proc}
	e.poller(t, s.url("INBOX"), proc)
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1, "Casebook/Quarantine": 1})
	if n := proc.attempts.Load(); n != 3 {
		t.Errorf("attempts = %d, want 3", n)
	}
	if u, _ := e.updates(t); u != 1 {
		t.Errorf("updates = %d, want 1", u)
	}
	if n := e.quarantined(t, string(casebook.QuarantineKindQuarantined)); n != 1 {
		t.Errorf("quarantine records = %d, want 1 (the poison message)", n)
	}
}

// Dovecot restarted under a running poller: it reconnects and goes on.
func TestDovecotRestart(t *testing.T) {
	e := newEnv(t)
	s := startDovecot(t)
	e.poller(t, s.url("INBOX"), nil)
	s.append(t, "INBOX", e.reply("before", 0))
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1})
	s.Restart()
	s.append(t, "INBOX", e.reply("after", 0))
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 2})
	if u, _ := e.updates(t); u != 2 {
		t.Errorf("updates = %d, want 2", u)
	}
}

// The connection cut inside a message's literal: nothing half-read is committed, and
// the message lands whole after the reconnect.
func TestCutMidFetch(t *testing.T) {
	e := newEnv(t)
	s := startDovecot(t)
	s.append(t, "INBOX", e.reply("big", 300<<10))
	proxy := dovecottestProxy(t, s)
	proxy.CutAfter(100 << 10)
	e.poller(t, "imap://alice:pw@"+proxy.Addr()+"/INBOX?tls=none", nil)
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 1})
	if proxy.Cuts() != 1 {
		t.Errorf("cuts = %d, want 1", proxy.Cuts())
	}
	var size int64
	if err := e.st.DB().Get(&size, `SELECT a.size FROM attachments a JOIN updates u ON u.id = a.update_id WHERE u.case_id = $1`, e.c.ID); err != nil {
		t.Fatal(err)
	}
	if size != 300<<10 {
		t.Errorf("attachment size = %d, want %d", size, 300<<10)
	}
}

// UIDVALIDITY changed while the poller runs, with the UIDs numbered from 1 again:
// the mail below the old checkpoint is still handled, and a copy of a mail already
// stored is not stored again.
func TestUIDValidityChanged(t *testing.T) {
	e := newEnv(t)
	s := startDovecot(t)
	for i := range 3 {
		s.append(t, "INBOX", e.reply(fmt.Sprint("old", i), 0))
	}
	e.poller(t, s.url("INBOX"), nil)
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 3})
	before := s.UIDValidity("alice", "INBOX")

	s.Stop()
	s.Deliver("alice", "INBOX", e.reply("new", 0))
	s.Deliver("alice", "INBOX", e.reply("old0", 0))
	s.ResetUIDs("alice", "INBOX")
	s.Start()
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 5})
	after := s.UIDValidity("alice", "INBOX")
	if after == before {
		t.Fatalf("UIDVALIDITY unchanged (%d)", after)
	}
	if u, _ := e.updates(t); u != 4 {
		t.Errorf("updates = %d, want 4", u)
	}
	key := ingest.CheckpointKey(ingest.Location{Mailbox: mustMailbox(t, s.url("INBOX")), UIDValidity: after})
	if _, err := e.st.Checkpoint(t.Context(), ingest.CheckpointChannel, key); err != nil {
		t.Errorf("checkpoint under the new UIDVALIDITY: %v", err)
	}
}

// Two instances on one mailbox: one works it, the other stands by and takes over
// when the first stops; a holder whose lock session dies takes the lock again.
func TestTwoInstances(t *testing.T) {
	e := newEnv(t)
	s := startDovecot(t)
	first := &counting{Processor: e.proc}
	second := &counting{Processor: e.proc}
	stopFirst := e.poller(t, s.url("INBOX"), first)
	eventually(t, "first instance holds the lock", func() (bool, string) {
		return s.count(t, "Casebook/Processed") == 0 && folderExists(t, s, "Casebook/Processed"), "no folders yet"
	})
	e.poller(t, s.url("INBOX"), second)
	for i := range 5 {
		s.append(t, "INBOX", e.reply(fmt.Sprint("a", i), 0))
	}
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 5})
	if first.n.Load() != 5 || second.n.Load() != 0 {
		t.Errorf("handled by first, second = %d, %d; want 5, 0", first.n.Load(), second.n.Load())
	}
	stopFirst()
	for i := range 5 {
		s.append(t, "INBOX", e.reply(fmt.Sprint("b", i), 0))
	}
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 10})
	if first.n.Load() != 5 || second.n.Load() != 5 {
		t.Errorf("handled by first, second = %d, %d; want 5, 5", first.n.Load(), second.n.Load())
	}

	// The holder's database session dies: it notices, stops, and takes the lock again.
	var killed int
	if err := e.st.DB().Get(&killed, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Errorf("lock sessions ended = %d, want 1", killed)
	}
	for i := range 3 {
		s.append(t, "INBOX", e.reply(fmt.Sprint("c", i), 0))
	}
	waitFolders(t, s, map[string]uint32{"INBOX": 0, "Casebook/Processed": 13})
	if second.n.Load() != 8 {
		t.Errorf("handled by second = %d, want 8", second.n.Load())
	}
	if u, _ := e.updates(t); u != 13 {
		t.Errorf("updates = %d, want 13", u)
	}
}
