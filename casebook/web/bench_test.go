package web_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/scs/postgresstore"

	"github.com/casebookhq/casebook/casebook"
	"github.com/casebookhq/casebook/casebook/blob"
	"github.com/casebookhq/casebook/casebook/password"
	"github.com/casebookhq/casebook/casebook/postgres/pgtest"
	"github.com/casebookhq/casebook/casebook/web"
)

var benchSizes = flag.String("web-bench-sizes", "10000,1000000", "case counts the web benchmark generates (comma-separated)")

// Benchmark shape: 1,000 orgs, one customer each, 50 staff owners, and 50 concurrent
// logged-in clients (40 customers of different orgs, 10 staff).
const (
	benchOrgs    = 1000
	benchStaff   = 50
	benchClients = 50
	// benchQuarantine is the number of quarantined mails waiting.
	benchQuarantine = 10000
)

// BenchmarkWeb measures the case list and a case page under 50 concurrent logged-in
// clients on loopback, and the staff's All list and quarantine queue under the 10
// staff clients, for each size in -web-bench-sizes. It reports p50 and p99
// latency and requests per second. The data is generated only when the benchmark runs
// (go test -bench), never by go test alone:
//
//	go test -run '^$' -bench BenchmarkWeb -benchtime 3000x ./casebook/web
func BenchmarkWeb(b *testing.B) {
	for _, s := range strings.Split(*benchSizes, ",") {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size < benchOrgs {
			b.Fatalf("-web-bench-sizes: %q is not a case count of at least %d", s, benchOrgs)
		}
		be := newBenchEnv(b, size)
		b.Run(fmt.Sprintf("cases=%d/list", size), func(b *testing.B) {
			be.load(b, be.clients, func(i int, c *benchClient) string {
				if i%4 == 3 {
					return "/cases?tab=resolved"
				}
				return "/cases"
			})
		})
		b.Run(fmt.Sprintf("cases=%d/case", size), func(b *testing.B) {
			be.load(b, be.clients, func(_ int, c *benchClient) string { return c.casePath })
		})
		// The staff's own list, the same clients on the owner index: the baseline
		// of the two staff pages below.
		b.Run(fmt.Sprintf("cases=%d/staff-mine", size), func(b *testing.B) {
			be.load(b, be.staff, func(i int, c *benchClient) string {
				if i%4 == 3 {
					return "/cases?tab=resolved"
				}
				return "/cases"
			})
		})
		// The staff's All list: every case of the support team, newest activity
		// first, the resolved tab (two statuses merged) one request in four, and a
		// page deep in the list one in eight.
		b.Run(fmt.Sprintf("cases=%d/staff-all", size), func(b *testing.B) {
			be.load(b, be.staff, func(i int, c *benchClient) string {
				switch {
				case i%8 == 7:
					return "/cases?view=all&after=" + be.deepCursor
				case i%4 == 3:
					return "/cases?view=all&tab=resolved"
				}
				return "/cases?view=all"
			})
		})
		// The quarantine queue holds benchQuarantine pending mails: its first page,
		// and a page from the middle one request in four.
		b.Run(fmt.Sprintf("cases=%d/quarantine", size), func(b *testing.B) {
			be.load(b, be.staff, func(i int, c *benchClient) string {
				if i%4 == 3 {
					return fmt.Sprintf("/quarantine?after=%d", benchQuarantine/2)
				}
				return "/quarantine"
			})
		})
	}
}

type benchClient struct {
	http     *http.Client
	casePath string
}

type benchEnv struct {
	ts      *httptest.Server
	clients []*benchClient
	// staff are the clients logged in as staff.
	staff []*benchClient
	// deepCursor names a page of the staff's All list half-way down.
	deepCursor string
}

func newBenchEnv(b *testing.B, size int) *benchEnv {
	b.Helper()
	ctx := context.Background()
	st := pgtest.Store(b)
	hasher := password.NewHasher(cheap, 4)
	hash := must(hasher.Hash(ctx, alicePW))
	start := time.Now()
	db := st.DB()
	for _, q := range []string{
		`INSERT INTO orgs (name) SELECT 'Org ' || g FROM generate_series(1, ` + strconv.Itoa(benchOrgs) + `) g`,
		`INSERT INTO users (org_id, email, name, password_hash) SELECT id, 'user' || id || '@org' || id || '.test', 'User ' || id, $1 FROM orgs ORDER BY id`,
		`INSERT INTO users (email, name, staff, password_hash)
			SELECT 'staff' || g || '@support.test', 'Staff ' || g, true, $1 FROM generate_series(1, ` + strconv.Itoa(benchStaff) + `) g`,
	} {
		args := []any{}
		if strings.Contains(q, "$1") {
			args = append(args, hash)
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	// One INSERT … SELECT generate_series: org and requester i, owner among the staff,
	// 70% open, 10% pending, 10% resolved, 10% closed, activity a minute apart.
	if _, err := db.ExecContext(ctx, `INSERT INTO cases (org_id, requester_id, owner_id, subject, status, attachment_count, created_at, updated_at)
		SELECT g % $2 + 1, g % $2 + 1, $2 + g % $3 + 1, 'Case ' || g || ': results and scans',
			CASE WHEN g % 10 < 7 THEN 'open' WHEN g % 10 = 7 THEN 'pending' WHEN g % 10 = 8 THEN 'resolved' ELSE 'closed' END,
			g % 5, now() - make_interval(mins => g), now() - make_interval(mins => g)
		FROM generate_series(1, $1) g`, size, benchOrgs, benchStaff); err != nil {
		b.Fatal(err)
	}
	// The most recent case of each org gets a timeline: 6 updates, 4 attachments.
	if _, err := db.ExecContext(ctx, `INSERT INTO updates (case_id, source, external_id, author, body, created_at)
		SELECT c.id, (ARRAY['email','slack','discord','web','email','web'])[k], 'bench-' || c.id || '-' || k,
			'User <user@example.test>', 'Update ' || k || E' of the case.\nSecond line.', now() - make_interval(mins => 10 - k)
		FROM cases c CROSS JOIN generate_series(1, 6) k WHERE c.id <= $1`, benchOrgs); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO attachments (update_id, case_id, filename, content_type, size, sha256, blob_key)
		SELECT u.id, u.case_id, 'scan-' || u.id || '.pdf', 'application/pdf', 123456, repeat('0', 64), repeat('0', 64)
		FROM updates u WHERE u.external_id LIKE 'bench-%-1' OR u.external_id LIKE 'bench-%-2' OR u.external_id LIKE 'bench-%-4' OR u.external_id LIKE 'bench-%-6'`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO quarantine (kind, source, external_id, reason_code, reason, message_id, sender, subject, raw_blob, body, meta, created_at)
		SELECT 'quarantined', 'email', 'bench-q-' || g, 'sender_not_verified', 'the sender could not be verified', 'q' || g || '@evil.test',
			'sender' || g || '@evil.test', 'Re: [CASE-' || g || '] scans', 'blob' || g, 'Here are the scans.',
			jsonb_build_object('sender_auth', 'none', 'sender_auth_domain', 'evil.test'), now() - make_interval(mins => g)
		FROM generate_series(1, $1) g`, benchQuarantine); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d cases in %v", size, time.Since(start).Round(time.Millisecond))

	blobs := must(blob.Open(b.TempDir()))
	svc := casebook.NewService(st, blobs, casebook.Options{Refs: casebook.DefaultRefFormat})
	srv, err := web.New(pgStore{st, &atomic.Bool{}}, svc, blobs, web.Options{
		Refs: casebook.DefaultRefFormat, Hasher: hasher, InsecureCookies: true,
		Sessions: postgresstore.NewWithCleanupInterval(db.DB, 0),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		IP:       web.Throttle{Free: 1 << 20, Window: time.Hour, Max: time.Minute},
		// The benchmarks measure the pages behind the login, not the second factor.
		RequireMFA: web.MFAOff,
	})
	if err != nil {
		b.Fatal(err)
	}
	var mid struct {
		UpdatedAt time.Time `db:"updated_at"`
		ID        int64     `db:"id"`
	}
	if err := db.GetContext(ctx, &mid, `SELECT updated_at, id FROM cases ORDER BY updated_at DESC, id DESC OFFSET $1 LIMIT 1`, size/2); err != nil {
		b.Fatal(err)
	}
	be := &benchEnv{ts: httptest.NewServer(srv.Handler()), deepCursor: fmt.Sprintf("%d.%d", mid.UpdatedAt.UnixMicro(), mid.ID)}
	b.Cleanup(be.ts.Close)
	transport := &http.Transport{MaxIdleConnsPerHost: 2 * benchClients}
	b.Cleanup(transport.CloseIdleConnections)
	for i := range benchClients {
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Transport: transport, Jar: jar}
		email, casePath := fmt.Sprintf("user%d@org%d.test", i+1, i+1), fmt.Sprintf("/cases/%d", caseFor(i+1, benchOrgs))
		if i >= benchClients-10 {
			k := i - (benchClients - 10) + 1
			email, casePath = fmt.Sprintf("staff%d@support.test", k), fmt.Sprintf("/cases/%d", caseFor(k, benchStaff))
		}
		r, err := hc.PostForm(be.ts.URL+"/login", url.Values{"email": {email}, "password": {alicePW}})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.Request.URL.Path != "/cases" {
			b.Fatalf("login %s ended at %s", email, r.Request.URL.Path)
		}
		c := &benchClient{http: hc, casePath: casePath}
		be.clients = append(be.clients, c)
		if strings.HasPrefix(email, "staff") {
			be.staff = append(be.staff, c)
		}
	}
	return be
}

// caseFor returns the number of a case of org k (mod benchOrgs) or of staff member k
// (mod benchStaff): case g belongs to org g % benchOrgs + 1 and to staff member
// g % benchStaff + 1, and case numbers follow generate_series.
func caseFor(k, mod int) int {
	if k == 1 {
		return mod
	}
	return k - 1
}

// load runs b.N requests spread over clients, all at once, and reports latency
// percentiles and throughput.
func (be *benchEnv) load(b *testing.B, clients []*benchClient, path func(i int, c *benchClient) string) {
	var next atomic.Int64
	lat := make([][]time.Duration, len(clients))
	var wg sync.WaitGroup
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	for ci, c := range clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				r, err := c.http.Get(be.ts.URL + path(i, c))
				if err == nil {
					_, err = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					if err == nil && r.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %d", r.Request.URL.Path, r.StatusCode)
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
				lat[ci] = append(lat[ci], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(float64(len(all))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
}
