package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"

	"github.com/casebookhq/casebook/bots/slack/slacktest"
	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob/s3test"
	"github.com/casebookhq/casebook/casebook/outbox/smtptest"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/cmd/casebook/demo"
	"github.com/casebookhq/casebook/ingest/imap/dovecottest"
)

// clusterBlobArgs points every instance at the one shared blob store, a bucket on a
// real S3 server.
func clusterBlobArgs(url string) []string { return []string{"--blob-url", url} }

// clusterEnv is the environment of every casebook process of the cluster: none of the
// test's own CASEBOOK_ settings, and the S3 server's credentials through the standard
// AWS variables.
func clusterEnv() []string {
	return append(environWithout("CASEBOOK_"), "AWS_ACCESS_KEY_ID="+s3test.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s3test.SecretKey, "AWS_EC2_METADATA_DISABLED=true")
}

var (
	clusterBinOnce sync.Once
	clusterBin     string
	clusterBinErr  error
)

// casebookBinary builds `casebook` once per test process, into a directory removed
// when the process ends, so the cluster runs the real binary as an operator would.
func casebookBinary(tb testing.TB) string {
	tb.Helper()
	clusterBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "casebook-cluster-")
		if err != nil {
			clusterBinErr = err
			return
		}
		clusterBin = filepath.Join(dir, "casebook")
		out, err := exec.Command("go", "build", "-o", clusterBin, ".").CombinedOutput()
		if err != nil {
			clusterBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if clusterBinErr != nil {
		tb.Fatal(clusterBinErr)
	}
	return clusterBin
}

// lockLog is an instance's stderr: it keeps the tail for failure reports and notes
// when the instance took the mailbox lock.
type lockLog struct {
	mu      sync.Mutex
	partial []byte
	tail    []byte
	took    []time.Time
}

func (l *lockLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i+1]
		if bytes.Contains(line, []byte(`"msg":"mailbox lock taken"`)) {
			l.took = append(l.took, time.Now())
		}
		l.tail = append(l.tail, line...)
		if len(l.tail) > 64<<10 {
			l.tail = l.tail[len(l.tail)-32<<10:]
		}
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *lockLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.tail)
}

// tookAfter returns the first time the instance took the lock after t.
func (l *lockLog) tookAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.took {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

// lastTook returns the last time the instance took the lock.
func (l *lockLog) lastTook() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.took) == 0 {
		return time.Time{}, false
	}
	return l.took[len(l.took)-1], true
}

// instance is one `casebook serve` process of the cluster.
type instance struct {
	name   string
	web    string
	admin  string
	args   []string
	cmd    *exec.Cmd
	log    *lockLog
	exited chan struct{}
}

// cluster is three `casebook serve` processes on one PostgreSQL, one Dovecot, one
// SMTP server and one S3 server.
type cluster struct {
	tb        testing.TB
	db        string
	st        *postgres.Store
	dovecot   *dovecottest.Server
	smtp      *smtptest.Server
	slack     *slacktest.Server
	blobs     string
	cases     []demo.Case
	instances []*instance
}

func newCluster(tb testing.TB, n int) *cluster {
	tb.Helper()
	c := &cluster{tb: tb, db: pgtest.URL(tb), blobs: s3test.Start(tb).URL("cluster")}
	c.dovecot = dovecottest.Start(tb)
	c.dovecot.AddUser("support", "support-pw")
	c.smtp = smtptest.Start(tb, smtptest.Options{})
	st, err := postgres.Open(context.Background(), c.db)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	c.st = st
	c.cases = seedCases(tb, st, 5)
	c.slack = slacktest.New()
	tb.Cleanup(c.slack.Close)
	org, err := st.OrgByName(context.Background(), "Acme Health")
	if err != nil {
		tb.Fatal(err)
	}
	if err := st.Bind(context.Background(), casebook.Binding{Platform: casebook.SourceSlack, Workspace: slacktest.TeamID, Channel: clusterSlackChannel, OrgID: org.ID}); err != nil {
		tb.Fatal(err)
	}
	bin := casebookBinary(tb)
	for i := range n {
		in := &instance{name: fmt.Sprintf("casebook-%d", i+1), web: freeAddr(tb), admin: freeAddr(tb)}
		in.args = append([]string{"serve", "--database-url", c.db,
			"--imap", c.dovecot.URL("support", "INBOX"), "--imap-spool-dir", tb.TempDir(),
			"--smtp", "smtp://" + c.smtp.Addr + "?tls=none", "--mail-from", "support@support.example",
			"--reply-address", "support@support.example", "--mail-rate-limit", "0", "--token-key", "cluster-token-key-0123456789abcdefghijklmnop",
			"--http", in.web, "--admin", in.admin, "--insecure-cookies", "--base-url", "http://" + in.web,
			"--trusted-authserv-id", demo.AuthservID,
			// Slack's Events API on every instance, as behind a load balancer.
			"--slack-bot-token", slacktest.BotToken, "--slack-signing-secret", clusterSlackSecret, "--slack-api-url", c.slack.APIURL()},
			clusterBlobArgs(c.blobs)...)
		c.instances = append(c.instances, in)
		c.start(in, bin)
	}
	tb.Cleanup(func() {
		for _, in := range c.instances {
			c.kill(in)
		}
	})
	for _, in := range c.instances {
		c.waitReady(in)
	}
	return c
}

func (c *cluster) start(in *instance, bin string) {
	c.tb.Helper()
	in.cmd = exec.Command(bin, in.args...)
	in.cmd.Env = clusterEnv()
	in.log = &lockLog{}
	in.cmd.Stderr = in.log
	in.exited = make(chan struct{})
	if err := in.cmd.Start(); err != nil {
		c.tb.Fatal(err)
	}
	go func() { in.cmd.Wait(); close(in.exited) }()
}

// kill ends an instance as a crash does: SIGKILL, no shutdown.
func (c *cluster) kill(in *instance) {
	select {
	case <-in.exited:
		return
	default:
	}
	in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.exited
}

func (c *cluster) waitReady(in *instance) {
	c.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + in.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-in.exited:
			c.tb.Fatalf("%s exited at start:\n%s", in.name, in.log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("%s not up after a minute:\n%s", in.name, in.log)
		}
	}
}

// holder returns the live instance that took the mailbox lock last.
func (c *cluster) holder() *instance {
	var best *instance
	var at time.Time
	for _, in := range c.instances {
		select {
		case <-in.exited:
			continue
		default:
		}
		if t, ok := in.log.lastTook(); ok && t.After(at) {
			best, at = in, t
		}
	}
	return best
}

// deliver drops n customer replies, each with a small attachment, into the mailbox.
func (c *cluster) deliver(from, n int) {
	c.tb.Helper()
	addrFrom, addrTo := &mail.Address{Address: "alice@acme.example"}, &mail.Address{Address: "support@support.example"}
	for i := from; i < from+n; i++ {
		cs := c.cases[i%len(c.cases)]
		body := bytes.Repeat([]byte(fmt.Sprintf("%06d result line\n", i)), 64)
		r := demo.Reply{Case: cs, Text: fmt.Sprintf("reply %d", i), Files: []demo.Attachment{{Name: fmt.Sprintf("result-%d.txt", i), ContentType: "text/plain", Body: body}}}
		raw, err := demo.Compose(r, addrFrom, addrTo, time.Now(), fmt.Sprintf("<cluster-%d@acme.example>", i))
		if err != nil {
			c.tb.Fatal(err)
		}
		// The receiving server's word that the mail passed DMARC, which the
		// instances trust, as a site trusts its own MX.
		c.dovecot.Deliver("support", "INBOX", demo.Stamp(raw, "acme.example"))
	}
}

func (c *cluster) activity() postgres.Activity {
	c.tb.Helper()
	a, err := c.st.ActivityOf(context.Background(), "email", "owner_notification")
	if err != nil {
		c.tb.Fatal(err)
	}
	return a
}

// folderCount counts a mailbox folder's messages.
func (c *cluster) folderCount(name string) uint32 {
	cl := c.dovecot.Dial("support")
	defer cl.Close()
	data, err := cl.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || data.NumMessages == nil {
		return 0
	}
	return *data.NumMessages
}

// waitFor polls cond until it holds or d passes, then fails with what it last saw.
func (c *cluster) waitFor(what string, d time.Duration, cond func() (bool, string)) {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, in := range c.instances {
				fmt.Fprintf(&logs, "--- %s\n%s\n", in.name, in.log)
			}
			c.tb.Fatalf("%s: still %s after %v\n%s", what, state, d, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// killHolder kills the instance working the mailbox once at least `after` replies
// are committed, restarts it, and returns when it killed it and how long the mailbox
// then went without a holder.
func (c *cluster) killHolder(after int) (killed time.Time, takeover time.Duration) {
	c.tb.Helper()
	c.waitFor("commits before the kill", 2*time.Minute, func() (bool, string) {
		a := c.activity()
		return a.Updates >= after && c.holder() != nil, fmt.Sprintf("%d updates", a.Updates)
	})
	victim := c.holder()
	killed = time.Now()
	c.kill(victim)
	var took time.Time
	c.waitFor("another instance takes the mailbox", time.Minute, func() (bool, string) {
		for _, in := range c.instances {
			if in == victim {
				continue
			}
			if at, ok := in.log.tookAfter(killed); ok {
				took = at
				return true, ""
			}
		}
		return false, "no holder"
	})
	c.start(victim, casebookBinary(c.tb))
	c.waitReady(victim)
	return killed, took.Sub(killed)
}

// checkOutbox waits until every owner notification is sent, and checks each reached
// the SMTP server exactly once.
// checkOutbox waits for want owner notifications and checks each reached the SMTP
// server once. A kill -9 may fall between the server's 250 and the worker's mark of
// the mail it was sending: that mail goes out again after the lease, with the same
// Message-ID (README, Outbox lease). So each of kills may leave one such duplicate, and
// only a mail whose row shows the second attempt.
func (c *cluster) checkOutbox(want, kills int) {
	c.tb.Helper()
	c.waitFor("owner notifications sent", 2*time.Minute, func() (bool, string) {
		a := c.activity()
		return a.MailsSent == want, fmt.Sprintf("%d of %d sent", a.MailsSent, want)
	})
	seen := map[string]int{}
	for _, m := range c.smtp.Messages() {
		i := bytes.Index(m.Data, []byte("\nMessage-Id: "))
		if i < 0 {
			i = bytes.Index(m.Data, []byte("\nMessage-ID: "))
		}
		if i < 0 {
			continue
		}
		id, _, _ := strings.Cut(string(m.Data[i+13:]), "\r\n")
		seen[id]++
	}
	dup := 0
	for id, n := range seen {
		if n == 1 {
			continue
		}
		dup++
		var attempts int
		if err := c.st.DB().QueryRowContext(context.Background(), `SELECT attempts FROM outbox WHERE message_id = $1`, id).Scan(&attempts); err != nil {
			c.tb.Fatal(err)
		}
		c.tb.Logf("%s reached the SMTP server %d times (row: %d attempts)", id, n, attempts)
		if n > 2 || attempts < 2 {
			c.tb.Errorf("%s reached the SMTP server %d times after %d attempts: not the one mail a kill caught between 250 and its mark", id, n, attempts)
		}
	}
	if dup > kills || len(seen) != want {
		c.tb.Errorf("%d distinct mails reached the SMTP server, %d of them twice; want %d, each once but for at most one per kill (%d)", len(seen), dup, want, kills)
	}
}

// lateAfterKill returns, for the kill at t, how long after it the last mail queued
// before it went out.
func (c *cluster) lateAfterKill(t time.Time) time.Duration {
	c.tb.Helper()
	var last time.Time
	err := c.st.DB().QueryRowContext(context.Background(), `SELECT COALESCE(max(sent_at), $1) FROM outbox
		WHERE kind = 'owner_notification' AND created_at < $1`, t).Scan(&last)
	if err != nil {
		c.tb.Fatal(err)
	}
	return max(last.Sub(t), 0)
}

// verifyBlobs runs `casebook blobs verify` against the shared store.
func (c *cluster) verifyBlobs() {
	c.tb.Helper()
	args := append([]string{"blobs", "verify", "--json", "--database-url", c.db}, clusterBlobArgs(c.blobs)...)
	cmd := exec.Command(casebookBinary(c.tb), args...)
	cmd.Env = clusterEnv()
	out, err := cmd.Output()
	if err != nil {
		c.tb.Fatalf("blobs verify: %v\n%s", err, out)
	}
	var rep struct {
		Checked  int               `json:"checked"`
		Problems []json.RawMessage `json:"problems"`
	}
	if err := json.Unmarshal(lastLine(out), &rep); err != nil {
		c.tb.Fatalf("blobs verify output %q: %v", out, err)
	}
	if len(rep.Problems) != 0 || rep.Checked == 0 {
		c.tb.Errorf("blobs verify: %d checked, problems %s", rep.Checked, out)
	}
}

func lastLine(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	return lines[len(lines)-1]
}

// runIngest delivers replies, kills the holder once half of them are in (kills
// times, spread over the run), and checks every mail landed once. It returns the
// takeover times and the kill instants.
func (c *cluster) runIngest(replies, kills int) (takeovers []time.Duration, killedAt []time.Time) {
	c.tb.Helper()
	c.deliver(0, replies)
	for k := range kills {
		at, took := c.killHolder(replies/2 + k*(replies/2)/(kills+1))
		killedAt, takeovers = append(killedAt, at), append(takeovers, took)
	}
	c.waitFor("every reply committed and filed", 5*time.Minute, func() (bool, string) {
		a := c.activity()
		inbox, done := c.folderCount("INBOX"), c.folderCount("Casebook/Processed")
		return a.Updates == replies && inbox == 0 && done == uint32(replies),
			fmt.Sprintf("%d updates, INBOX %d, Processed %d", a.Updates, inbox, done)
	})
	a := c.activity()
	if a.Updates != replies || a.Attachments != replies || a.Quarantined != 0 {
		c.tb.Errorf("activity %+v, want %d updates with one file each and no quarantine", a, replies)
	}
	return takeovers, killedAt
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestCluster runs three `casebook serve` processes on one PostgreSQL, Dovecot, SMTP
// server and blob store. The instance working the mailbox is killed with SIGKILL half
// way through the replies; another takes the mailbox over, every mail lands once and
// is filed, no blob is missing, and every owner notification goes out once (but for
// the one mail the kill may catch between the server's 250 and its mark), the dead
// instance's claimed ones within 60 s. Then the web page is used through all
// three at once.
func TestCluster(t *testing.T) {
	replies := 200
	if testing.Short() {
		replies = 60
	}
	c := newCluster(t, 3)
	takeovers, kills := c.runIngest(replies, 1)
	t.Logf("takeover after the holder's kill: %v", takeovers)
	if takeovers[0] > 30*time.Second {
		t.Errorf("takeover took %v, want <= 30s", takeovers[0])
	}
	c.checkOutbox(replies, len(kills))
	for _, k := range kills {
		late := c.lateAfterKill(k)
		t.Logf("last notification queued before the kill went out %v after it", late)
		if late > 60*time.Second {
			t.Errorf("a notification queued before the kill went out %v after it, want <= 60s", late)
		}
	}
	c.verifyBlobs()
	t.Run("web", func(t *testing.T) { c.checkWeb(t) })
	t.Run("slack events", func(t *testing.T) { c.checkSlack(t) })
}
