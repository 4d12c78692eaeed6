package metrics_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/metrics"
	"github.com/casebookhq/casebook/casebook/postgres"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var discard = slog.New(slog.DiscardHandler)

// scrape fetches /metrics and returns each sample line's value keyed by
// `name{labels}` as the text format writes it.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsAfterIngest adds updates through the real write path on a real database
// and reads the counts back from /metrics.
func TestMetricsAfterIngest(t *testing.T) {
	ctx := context.Background()
	st := pgtest.Store(t)
	bl, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	m.WatchOutbox(st, discard)
	m.WatchQuarantine(st, discard)
	svc := casebook.NewService(st, bl, casebook.Options{Observer: m})

	org, err := st.AddOrg(ctx, "Acme Health", "acme.test")
	if err != nil {
		t.Fatal(err)
	}
	cust, err := st.AddUser(ctx, postgres.NewUser{OrgID: &org.ID, Email: "alice@acme.test"})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := st.AddUser(ctx, postgres.NewUser{Email: "sam@support.test", Staff: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.OpenCase(ctx, postgres.NewCase{OrgID: org.ID, RequesterID: cust.ID, OwnerID: owner.ID, Subject: "Lab results"})
	if err != nil {
		t.Fatal(err)
	}
	upd := func(ext string, number int64, files ...casebook.File) casebook.Update {
		return casebook.Update{
			Source: casebook.SourceEmail, ExternalID: ext, CaseNumber: number,
			Author: casebook.Author{Kind: casebook.IdentityEmail, Value: "alice@acme.test"},
			Files:  casebook.Files(files...),
		}
	}
	adds := []casebook.Update{
		upd("m1", c.Number, casebook.File{Name: "a.txt", Body: strings.NewReader("12345")}, casebook.File{Name: "b.txt", Body: strings.NewReader("678")}),
		upd("m1", c.Number),
		upd("m2", c.Number+1000),
		upd("m3", c.Number, casebook.File{Name: "c.txt", Body: strings.NewReader("90")}),
	}
	for _, u := range adds {
		svc.AddUpdate(ctx, u)
	}
	for i, kind := range []string{"quarantined", "quarantined", "ignored"} {
		if _, err := st.AddQuarantine(ctx, kind, "no_case_ref", "no case", casebook.Update{Source: casebook.SourceEmail, ExternalID: fmt.Sprint("q", i)}); err != nil {
			t.Fatal(err)
		}
	}

	admin := metrics.NewAdmin("127.0.0.1:0", m, discard)
	got := scrape(t, admin.Handler())
	want := map[string]float64{
		`casebook_updates_added_total{source="email"}`:                            2,
		`casebook_updates_duplicate_total{source="email"}`:                        1,
		`casebook_updates_rejected_total{reason="case_not_found",source="email"}`: 1,
		`casebook_attachment_bytes_total{source="email"}`:                         10,
		`casebook_outbox_mails{status="pending"}`:                                 2,
		`casebook_outbox_mails{status="failed"}`:                                  0,
		`casebook_quarantine_pending`:                                             2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestEventCounters(t *testing.T) {
	m := metrics.New()
	m.MessageFetched("INBOX")
	m.MessageFetched("INBOX")
	m.IMAPReconnect("INBOX")
	m.Quarantined("no_case_ref")
	m.IdleWakeToCommit("INBOX", 600_000_000)
	got := scrape(t, metrics.NewAdmin("", m, discard).Handler())
	want := map[string]float64{
		`casebook_imap_messages_fetched_total{mailbox="INBOX"}`:                       2,
		`casebook_imap_reconnects_total{mailbox="INBOX"}`:                             1,
		`casebook_quarantined_total{reason="no_case_ref"}`:                            1,
		`casebook_imap_idle_wake_to_commit_seconds_count{mailbox="INBOX"}`:            1,
		`casebook_imap_idle_wake_to_commit_seconds_bucket{mailbox="INBOX",le="0.5"}`:  0,
		`casebook_imap_idle_wake_to_commit_seconds_bucket{mailbox="INBOX",le="0.75"}`: 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestInfectedCounter checks an infected file counts by channel, beside the refusal.
func TestInfectedCounter(t *testing.T) {
	m := metrics.New()
	infected := fmt.Errorf("add update to CASE-000001: %w", &casebook.InfectedError{File: "a.zip", Signature: "Eicar"})
	m.ObserveUpdate(casebook.SourceSlack, casebook.Outcome{}, infected)
	m.ObserveUpdate(casebook.SourceWeb, casebook.Outcome{}, infected)
	m.ObserveUpdate(casebook.SourceWeb, casebook.Outcome{}, infected)
	m.ObserveUpdate(casebook.SourceWeb, casebook.Outcome{}, fmt.Errorf("scan: %w", casebook.ErrScanUnavailable))
	got := scrape(t, metrics.NewAdmin("", m, discard).Handler())
	want := map[string]float64{
		`casebook_files_infected_total{source="slack"}`:                           1,
		`casebook_files_infected_total{source="web"}`:                             2,
		`casebook_updates_rejected_total{reason="malware",source="web"}`:          2,
		`casebook_updates_rejected_total{reason="scan_unavailable",source="web"}`: 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{casebook.ErrNotAllowed, "not_allowed"},
		{errors.Join(errors.New("add update to CASE-000001"), casebook.ErrCaseClosed), "case_closed"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("add update: %w", &casebook.InfectedError{File: "a.zip", Signature: "Eicar"}), "malware"},
		{fmt.Errorf("scan: %w", casebook.ErrScanUnavailable), "scan_unavailable"},
		{errors.New("connection reset by peer"), "error"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := metrics.Reason(tt.err); got != tt.want {
				t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestHTTPMiddleware checks requests are labelled by the mux pattern, not the path.
func TestHTTPMiddleware(t *testing.T) {
	m := metrics.New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cases/{ref}", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusSeeOther) })
	h := m.HTTP(mux)
	for _, r := range []*http.Request{
		httptest.NewRequest("GET", "/cases/CASE-000001", nil),
		httptest.NewRequest("GET", "/cases/CASE-000002", nil),
		httptest.NewRequest("POST", "/login", nil),
		httptest.NewRequest("GET", "/nothing/here", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	got := scrape(t, metrics.NewAdmin("", m, discard).Handler())
	want := map[string]float64{
		`casebook_http_request_duration_seconds_count{code="200",method="GET",route="GET /cases/{ref}"}`: 2,
		`casebook_http_request_duration_seconds_count{code="303",method="POST",route="POST /login"}`:     1,
		`casebook_http_request_duration_seconds_count{code="404",method="GET",route="unmatched"}`:        1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	st := pgtest.Store(t)
	admin := metrics.NewAdmin("", metrics.New(), discard)
	admin.Register("postgres", st.Ping)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		admin.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/healthz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body = get("/readyz")
	if diff := cmp.Diff("postgres: ok\n", body); code != http.StatusOK || diff != "" {
		t.Errorf("/readyz = %d, body (-want +got):\n%s", code, diff)
	}

	admin.Register("imap INBOX", func(ctx context.Context) error { return errors.New("not connected:\nlogin refused") })
	code, body = get("/readyz")
	if diff := cmp.Diff("imap INBOX: not connected: login refused\npostgres: ok\n", body); code != http.StatusServiceUnavailable || diff != "" {
		t.Errorf("/readyz = %d, body (-want +got):\n%s", code, diff)
	}

	st.Close()
	if code, body = get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "postgres: ") || strings.Contains(body, "postgres: ok") {
		t.Errorf("/readyz with the database closed = %d %q", code, body)
	}
}

// TestServe runs the listener on a real socket and stops it with the context.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.NewAdmin("", metrics.New(), discard).Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "go_goroutines") {
		t.Errorf("GET /metrics = %d, %d bytes", resp.StatusCode, len(b))
	}
	// The profiler: the index, a heap profile, and a short CPU profile.
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/profile?seconds=1": "",
	} {
		resp, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s = %d, %d bytes", path, resp.StatusCode, len(b))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
}
