package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

// outboxRow is an outbox row as scanned; data is decoded afterwards.
type outboxRow struct {
	ID            int64      `db:"id"`
	Kind          string     `db:"kind"`
	CaseID        *int64     `db:"case_id"`
	UpdateID      *int64     `db:"update_id"`
	UserID        *int64     `db:"user_id"`
	Recipient     string     `db:"recipient"`
	MessageID     string     `db:"message_id"`
	Data          []byte     `db:"data"`
	Status        string     `db:"status"`
	Attempts      int        `db:"attempts"`
	NextAttemptAt time.Time  `db:"next_attempt_at"`
	LastError     string     `db:"last_error"`
	CreatedAt     time.Time  `db:"created_at"`
	SentAt        *time.Time `db:"sent_at"`
	CaseNumber    int64      `db:"case_number"`
}

func (r outboxRow) entry() (casebook.OutboxEntry, error) {
	e := casebook.OutboxEntry{
		ID: r.ID,
		OutboxMail: casebook.OutboxMail{
			Kind:      casebook.OutboxKind(r.Kind),
			CaseID:    r.CaseID,
			UpdateID:  r.UpdateID,
			UserID:    r.UserID,
			Recipient: r.Recipient,
			MessageID: r.MessageID,
		},
		CaseNumber:    r.CaseNumber,
		Status:        casebook.OutboxStatus(r.Status),
		Attempts:      r.Attempts,
		NextAttemptAt: r.NextAttemptAt,
		LastError:     r.LastError,
		CreatedAt:     r.CreatedAt,
		SentAt:        r.SentAt,
	}
	d, err := casebook.DecodeMailData(e.Kind, r.Data)
	if err != nil {
		return e, fmt.Errorf("outbox row %d: %w", r.ID, err)
	}
	e.Data = d
	return e, nil
}

// outboxColumns leaves out data; each query says which data it wants (the password
// is never listed).
const outboxColumns = `o.id, o.kind, o.case_id, o.update_id, o.user_id, o.recipient, o.message_id,
	o.status, o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.sent_at, COALESCE(c.number, 0) AS case_number`

// scrubData removes what must not outlive the mail: the temporary password leaves the
// database when its mail is sent, fails or is suppressed.
const scrubData = `data - '` + plainPasswordKey + `' - '` + sealedPasswordKey + `'`

// ClaimOutbox claims up to limit mails due at now for one sending attempt. Each claimed
// row's attempts is counted and its next attempt moved to now+lease, so a worker that
// dies mid-send leaves the row to be claimed again once the lease ends. Rows are locked
// with FOR UPDATE SKIP LOCKED, so workers on several instances never claim the same row.
//
// A mail about a case is admitted only while fewer than perHour mails about that case
// went (or are going) to that recipient in the hour before now; the others are marked
// suppressed with the reason and returned with that status, to be logged. perHour <= 0
// admits everything.
func (s *Store) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit, perHour int) ([]casebook.OutboxEntry, error) {
	var rows []outboxRow
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.SelectContext(ctx, &rows, `SELECT `+outboxColumns+`, o.data
			FROM outbox o LEFT JOIN cases c ON c.id = o.case_id
			WHERE o.status = 'pending' AND o.next_attempt_at <= $1
			ORDER BY o.next_attempt_at, o.id LIMIT $2
			FOR UPDATE OF o SKIP LOCKED`, now, limit); err != nil {
			return err
		}
		suppressed, err := rateLimit(ctx, tx, rows, now, perHour)
		if err != nil {
			return err
		}
		reason := fmt.Sprintf("rate limit: %d mails per case and recipient per hour", perHour)
		var claimed, dropped []int64
		for i := range rows {
			if suppressed[rows[i].ID] {
				rows[i].Status = string(casebook.OutboxSuppressed)
				rows[i].LastError = reason
				dropped = append(dropped, rows[i].ID)
				continue
			}
			rows[i].Attempts++
			rows[i].NextAttemptAt = now.Add(lease)
			claimed = append(claimed, rows[i].ID)
		}
		if len(claimed) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2
				WHERE id = ANY($1)`, pq.Array(claimed), now.Add(lease)); err != nil {
				return err
			}
		}
		if len(dropped) > 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'suppressed', last_error = $2, data = `+scrubData+`
				WHERE id = ANY($1)`, pq.Array(dropped), reason); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	out := make([]casebook.OutboxEntry, 0, len(rows))
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, fmt.Errorf("claim outbox: %w", err)
		}
		if d, ok := e.Data.(casebook.TemporaryPasswordMail); ok {
			if e.Status == casebook.OutboxSuppressed {
				d.Password, d.Sealed = "", nil
			} else {
				d = s.openPassword(e.MessageID, d)
			}
			e.Data = d
		}
		out = append(out, e)
	}
	return out, nil
}

// rateLimit decides which of the rows being claimed for the first time exceed the
// per-case, per-recipient hourly limit. Rows claimed before were admitted then and
// count against the limit until they are sent or fail.
func rateLimit(ctx context.Context, tx *sqlx.Tx, rows []outboxRow, now time.Time, perHour int) (map[int64]bool, error) {
	type key struct {
		caseID    int64
		recipient string
	}
	var keys []key
	for _, r := range rows {
		if r.CaseID == nil || r.Attempts > 0 || perHour <= 0 {
			continue
		}
		k := key{*r.CaseID, strings.ToLower(r.Recipient)}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	// The count and the admission must be one step across workers: a transaction-scoped
	// advisory lock per (case, recipient), taken in ascending key order so that two
	// workers with overlapping batches cannot deadlock.
	locks := make([]int64, len(keys))
	for i, k := range keys {
		h := fnv.New64a()
		h.Write([]byte("casebook outbox rate\x00" + strconv.FormatInt(k.caseID, 10) + "\x00" + k.recipient))
		locks[i] = int64(h.Sum64())
	}
	slices.Sort(locks)
	for _, l := range slices.Compact(locks) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, l); err != nil {
			return nil, err
		}
	}
	used := make(map[key]int, len(keys))
	for _, k := range keys {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM outbox
			WHERE case_id = $1 AND lower(recipient) = $2
			AND ((status = 'sent' AND sent_at > $3) OR (status = 'pending' AND attempts > 0))`,
			k.caseID, k.recipient, now.Add(-time.Hour)); err != nil {
			return nil, err
		}
		used[k] = n
	}
	suppressed := map[int64]bool{}
	for _, r := range rows {
		if r.CaseID == nil || r.Attempts > 0 {
			continue
		}
		k := key{*r.CaseID, strings.ToLower(r.Recipient)}
		if used[k] >= perHour {
			suppressed[r.ID] = true
			continue
		}
		used[k]++
	}
	return suppressed, nil
}

// MarkOutboxSent records that a claimed mail went out.
func (s *Store) MarkOutboxSent(ctx context.Context, id int64, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = 'sent', sent_at = $2, last_error = '', data = `+scrubData+`
		WHERE id = $1 AND status = 'pending'`, id, now)
	if err != nil {
		return fmt.Errorf("mark outbox %d sent: %w", id, err)
	}
	return nil
}

// RetryOutbox puts a claimed mail back to be tried again at next, keeping why it failed.
func (s *Store) RetryOutbox(ctx context.Context, id int64, next time.Time, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET next_attempt_at = $2, last_error = $3
		WHERE id = $1 AND status = 'pending'`, id, next, reason)
	if err != nil {
		return fmt.Errorf("retry outbox %d: %w", id, err)
	}
	return nil
}

// FailOutbox gives a claimed mail up for good, keeping the reason (the SMTP reply).
func (s *Store) FailOutbox(ctx context.Context, id int64, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET status = 'failed', last_error = $2, data = `+scrubData+`
		WHERE id = $1 AND status = 'pending'`, id, reason)
	if err != nil {
		return fmt.Errorf("fail outbox %d: %w", id, err)
	}
	return nil
}

// OutboxFilter selects outbox rows for a list. Zero fields do not filter.
type OutboxFilter struct {
	Status casebook.OutboxStatus
	// Before is the keyset cursor: rows with a smaller id.
	Before int64
	Limit  int
}

// OutboxEntries lists outbox rows, newest first. Data never includes a password.
func (s *Store) OutboxEntries(ctx context.Context, f OutboxFilter) ([]casebook.OutboxEntry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var rows []outboxRow
	err := s.db.SelectContext(ctx, &rows, `SELECT `+outboxColumns+`, o.`+scrubData+` AS data
		FROM outbox o LEFT JOIN cases c ON c.id = o.case_id
		WHERE ($1::text = '' OR o.status = $1) AND ($2::bigint = 0 OR o.id < $2)
		ORDER BY o.id DESC LIMIT $3`, string(f.Status), f.Before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("list outbox: %w", err)
	}
	out := make([]casebook.OutboxEntry, 0, len(rows))
	for _, r := range rows {
		e, err := r.entry()
		if err != nil {
			return nil, fmt.Errorf("list outbox: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// FirstCaseMailID returns the Message-ID of the first case email to recipient about a
// case, or ErrNotFound.
func (s *Store) FirstCaseMailID(ctx context.Context, caseID int64, recipient string) (string, error) {
	var id string
	err := s.db.GetContext(ctx, &id, `SELECT message_id FROM outbox
		WHERE case_id = $1 AND lower(recipient) = lower($2) AND kind = 'case_email' ORDER BY id LIMIT 1`, caseID, recipient)
	if err != nil {
		return "", fmt.Errorf("first case mail of case %d: %w", caseID, notFound(err, casebook.ErrNotFound))
	}
	return id, nil
}

// ExtendOutboxLease moves the next attempt of claimed rows to until, the renewal of a
// worker's lease on them. A claim is the row's id and its attempts as claimed: each
// claim counts an attempt, so a row another worker claimed since, or that was sent,
// given up or deferred past until, is left alone. It returns the ids still held.
func (s *Store) ExtendOutboxLease(ctx context.Context, claims []casebook.OutboxEntry, until time.Time) ([]int64, error) {
	ids := make([]int64, len(claims))
	attempts := make([]int64, len(claims))
	for i, e := range claims {
		ids[i], attempts[i] = e.ID, int64(e.Attempts)
	}
	var held []int64
	err := s.db.SelectContext(ctx, &held, `UPDATE outbox o SET next_attempt_at = $3
		FROM unnest($1::bigint[], $2::bigint[]) AS c(id, attempts)
		WHERE o.id = c.id AND o.attempts = c.attempts AND o.status = 'pending' AND o.next_attempt_at <= $3
		RETURNING o.id`, pq.Array(ids), pq.Array(attempts), until)
	if err != nil {
		return nil, fmt.Errorf("extend outbox lease: %w", err)
	}
	return held, nil
}

// ReleaseOutboxClaims hands back claimed rows a stopping worker did not start: each
// row still held by that claim (pending, attempts unchanged since) is due again at now
// with its attempt uncounted, so that another worker sends it at once rather than
// after the lease. It returns how many rows it handed back.
func (s *Store) ReleaseOutboxClaims(ctx context.Context, claims []casebook.OutboxEntry, now time.Time) (int, error) {
	ids := make([]int64, len(claims))
	attempts := make([]int64, len(claims))
	for i, e := range claims {
		ids[i], attempts[i] = e.ID, int64(e.Attempts)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE outbox o SET next_attempt_at = $3, attempts = o.attempts - 1
		FROM unnest($1::bigint[], $2::bigint[]) AS c(id, attempts)
		WHERE o.id = c.id AND o.attempts = c.attempts AND o.status = 'pending'`, pq.Array(ids), pq.Array(attempts), now)
	if err != nil {
		return 0, fmt.Errorf("release outbox claims: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release outbox claims: %w", err)
	}
	return int(n), nil
}
