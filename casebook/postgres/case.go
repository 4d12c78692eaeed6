package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

const caseColumns = `c.id, c.number, c.org_id, o.name AS org_name, o.domain AS org_domain,
	c.requester_id, r.email AS requester_email, c.owner_id, w.email AS owner_email, w.name AS owner_name,
	c.subject, c.status, c.attachment_count, c.created_at, c.updated_at`

const caseJoins = ` FROM cases c JOIN orgs o ON o.id = c.org_id JOIN users r ON r.id = c.requester_id JOIN users w ON w.id = c.owner_id`

// NewCase is a case to open.
type NewCase struct {
	OrgID       int64
	RequesterID int64
	OwnerID     int64
	Subject     string
}

// OpenCase opens a case. The requester must be a customer of the org and the owner staff.
// Mails queued with it (the case email to the requester) commit in the same transaction.
func (s *Store) OpenCase(ctx context.Context, nc NewCase, mails ...func(c casebook.Case) casebook.OutboxMail) (casebook.Case, error) {
	nc.Subject = strings.TrimSpace(nc.Subject)
	if nc.Subject == "" {
		return casebook.Case{}, fmt.Errorf("open case: %w: subject is empty", casebook.ErrInvalidInput)
	}
	var c casebook.Case
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var ok bool
		if err := tx.GetContext(ctx, &ok, `SELECT
			EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $2) AND EXISTS (SELECT 1 FROM users WHERE id = $3 AND staff)`,
			nc.RequesterID, nc.OrgID, nc.OwnerID); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: the requester must belong to the org and the owner must be staff", casebook.ErrInvalidInput)
		}
		var id int64
		if err := tx.GetContext(ctx, &id, `INSERT INTO cases (org_id, requester_id, owner_id, subject) VALUES ($1, $2, $3, $4) RETURNING id`,
			nc.OrgID, nc.RequesterID, nc.OwnerID, nc.Subject); err != nil {
			return err
		}
		if err := tx.GetContext(ctx, &c, `SELECT `+caseColumns+caseJoins+` WHERE c.id = $1`, id); err != nil {
			return err
		}
		for _, m := range mails {
			if err := s.enqueue(ctx, tx, m(c)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return casebook.Case{}, fmt.Errorf("open case: %w", err)
	}
	return c, nil
}

// CaseByNumber finds a case by its number.
func (s *Store) CaseByNumber(ctx context.Context, number int64) (casebook.Case, error) {
	var c casebook.Case
	err := s.hot.GetContext(ctx, &c, `SELECT `+caseColumns+caseJoins+` WHERE c.number = $1`, number)
	if err != nil {
		return c, fmt.Errorf("case %d: %w", number, notFound(err, casebook.ErrCaseNotFound))
	}
	return c, nil
}

// searchHits is how many matching cases a search gathers through the trigram
// indexes before it deems its text common.
const searchHits = 5000

// searchCondition is the filter of a search for text. PostgreSQL cannot tell how
// many cases a substring matches, so it is asked first, through the trigram indexes
// and bounded: a rare text (a name, an address, a word of one subject) lists its few
// cases by id; a common one filters the ordered walk of the list instead. Cases asks
// only when searchRecent found the text rare among each tab's newest cases, so that
// walk is long only for a text common in older cases and absent from recent ones.
func (s *Store) searchCondition(ctx context.Context, text string, arg func(any) string) (string, error) {
	like := "%" + likeEscaper.Replace(text) + "%"
	var ids []int64
	if err := s.hot.SelectContext(ctx, &ids, `SELECT id FROM cases WHERE subject ILIKE $1
		UNION ALL SELECT id FROM cases WHERE requester_id IN (SELECT id FROM users WHERE email ILIKE $1 OR name ILIKE $1)
		LIMIT $2`, like, searchHits+1); err != nil {
		return "", fmt.Errorf("search cases: %w", err)
	}
	if len(ids) <= searchHits {
		return "c.id = ANY(" + arg(pq.Array(ids)) + ")", nil
	}
	p := arg(like)
	return "(c.subject ILIKE " + p + " OR c.requester_id IN (SELECT id FROM users WHERE email ILIKE " + p + " OR name ILIKE " + p + "))", nil
}

// searchWalk is how many of a tab's most recent cases a search reads in order before
// it asks the trigram indexes instead.
const searchWalk = 1000

// searchRecent looks for a page of f's search among the most recent searchWalk cases
// of each tab, in list order: a text common in the tab fills its page within a few
// dozen, and a tab of fewer cases than that is read whole. complete is false when the
// page may lack older matches the walk did not reach, and the indexes must be asked
// (searchCondition). where and args are the list's other conditions.
func (s *Store) searchRecent(ctx context.Context, f casebook.CaseFilter, where []string, args []any) (page []casebook.Case, complete bool, err error) {
	q, qargs := recentQuery(f, where, args, true)
	if err := s.hot.SelectContext(ctx, &page, q, qargs...); err != nil {
		return nil, false, fmt.Errorf("search cases: %w", err)
	}
	if len(page) == f.Limit && len(f.Statuses) <= 1 {
		// One tab in order: its first matches are the page.
		return page, true, nil
	}
	// The oldest case read in each tab that has more: a match older than it may exist
	// unseen, so the page stands only if it is full and ends no older than that.
	q, qargs = recentQuery(f, where, args, false)
	var edges []struct {
		UpdatedAt time.Time `db:"updated_at"`
		ID        int64     `db:"id"`
	}
	if err := s.hot.SelectContext(ctx, &edges, q, qargs...); err != nil {
		return nil, false, fmt.Errorf("search cases: %w", err)
	}
	for _, e := range edges {
		if len(page) < f.Limit {
			return page, false, nil
		}
		last := page[len(page)-1]
		if last.UpdatedAt.Before(e.UpdatedAt) || last.UpdatedAt.Equal(e.UpdatedAt) && last.ID < e.ID {
			return page, false, nil
		}
	}
	return page, true, nil
}

// recentQuery is searchRecent's query over the most recent searchWalk cases of each of
// f's tabs: with search, the page of them that match f.Text; else the oldest case read
// in each tab that has more than that.
func recentQuery(f casebook.CaseFilter, where []string, args []any, search bool) (string, []any) {
	args = slices.Clone(args)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	tabs := []string{""}
	if len(f.Statuses) > 0 {
		tabs = tabs[:0]
		for _, st := range f.Statuses {
			tabs = append(tabs, "c.status = "+arg(string(st)))
		}
	}
	list := func(tab, from, rest string) string {
		cond := slices.Clip(where)
		if tab != "" {
			cond = append(cond, tab)
		}
		return listSQL(from, cond, rest)
	}
	parts := make([]string, len(tabs))
	if !search {
		edge := arg(searchWalk - 1)
		for i, tab := range tabs {
			parts[i] = "(" + list(tab, "c.updated_at, c.id FROM cases c", "OFFSET "+edge+" LIMIT 1") + ")"
		}
		return strings.Join(parts, " UNION ALL "), args
	}
	walk, limit := arg(searchWalk), arg(f.Limit)
	like := arg("%" + likeEscaper.Replace(f.Text) + "%")
	match := "(recent.subject ILIKE " + like + " OR recent.requester_id IN (SELECT id FROM users WHERE email ILIKE " + like + " OR name ILIKE " + like + "))"
	for i, tab := range tabs {
		parts[i] = "(SELECT * FROM (" + list(tab, caseColumns+caseJoins, "LIMIT "+walk) + ") AS recent WHERE " + match +
			" ORDER BY updated_at DESC, id DESC LIMIT " + limit + ")"
	}
	return "SELECT * FROM (" + strings.Join(parts, " UNION ALL ") + ") AS page ORDER BY updated_at DESC, id DESC LIMIT " + limit, args
}

// likeEscaper quotes LIKE's wildcards, so that searched text matches as typed.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// SetCaseStatus moves a case to a status.
func (s *Store) SetCaseStatus(ctx context.Context, number int64, st casebook.Status) (casebook.Case, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE cases SET status = $2, updated_at = now() WHERE number = $1`, number, st)
	if err != nil {
		return casebook.Case{}, fmt.Errorf("set status of case %d: %w", number, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return casebook.Case{}, fmt.Errorf("case %d: %w", number, casebook.ErrCaseNotFound)
	}
	return s.CaseByNumber(ctx, number)
}

// Cases lists cases by most recent activity, newest first, one keyset page at a time.
// With several statuses each gets its own ordered, limited branch of a UNION ALL: one
// status at a time, PostgreSQL walks the index (org_id or owner_id, status, updated_at
// DESC, id DESC) in order and stops after a page however many cases match, where an
// IN list would sort every matching row.
func (s *Store) Cases(ctx context.Context, f casebook.CaseFilter) ([]casebook.Case, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 50
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if f.OrgID != 0 {
		where = append(where, "c.org_id = "+arg(f.OrgID))
	}
	if f.OwnerID != 0 {
		where = append(where, "c.owner_id = "+arg(f.OwnerID))
	}
	if f.Number != 0 {
		where = append(where, "c.number = "+arg(f.Number))
	}
	if f.After != nil {
		where = append(where, "(c.updated_at, c.id) < ("+arg(f.After.UpdatedAt)+", "+arg(f.After.ID)+")")
	}
	if f.Text != "" {
		page, complete, err := s.searchRecent(ctx, f, where, slices.Clone(args))
		if err != nil || complete {
			return page, err
		}
		cond, err := s.searchCondition(ctx, f.Text, arg)
		if err != nil {
			return nil, err
		}
		where = append(where, cond)
	}
	limit := arg(f.Limit)
	branch := func(cond []string) string { return listSQL(caseColumns+caseJoins, cond, "LIMIT "+limit) }
	var q string
	switch len(f.Statuses) {
	case 0:
		q = branch(where)
	case 1:
		q = branch(append(where, "c.status = "+arg(string(f.Statuses[0]))))
	default:
		parts := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			parts[i] = "(" + branch(append(slices.Clip(where), "c.status = "+arg(string(st)))) + ")"
		}
		q = "SELECT * FROM (" + strings.Join(parts, " UNION ALL ") + ") AS page ORDER BY updated_at DESC, id DESC LIMIT " + limit
	}
	var cs []casebook.Case
	if err := s.hot.SelectContext(ctx, &cs, q, args...); err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	return cs, nil
}

// listSQL selects from (columns and tables) the rows meeting cond in list order, by
// most recent activity, with rest (a LIMIT) after.
func listSQL(from string, cond []string, rest string) string {
	q := "SELECT " + from
	if len(cond) > 0 {
		q += " WHERE " + strings.Join(cond, " AND ")
	}
	return q + " ORDER BY c.updated_at DESC, c.id DESC " + rest
}

// Timeline returns a case's updates, oldest first, each with its attachments.
func (s *Store) Timeline(ctx context.Context, caseID int64) ([]casebook.TimelineEntry, error) {
	var es []casebook.TimelineEntry
	if err := s.hot.SelectContext(ctx, &es, `SELECT id, source, external_id, author_user_id, author, body, created_at
		FROM updates WHERE case_id = $1 ORDER BY created_at, id`, caseID); err != nil {
		return nil, fmt.Errorf("timeline of case %d: %w", caseID, err)
	}
	as, err := s.AttachmentsForCase(ctx, caseID)
	if err != nil {
		return nil, err
	}
	byUpdate := map[int64][]casebook.Attachment{}
	for _, a := range as {
		byUpdate[a.UpdateID] = append(byUpdate[a.UpdateID], a)
	}
	for i := range es {
		es[i].Attachments = byUpdate[es[i].ID]
	}
	return es, nil
}

const attachmentColumns = `a.id, a.case_id, a.update_id, a.filename, a.content_type, a.size, a.sha256, a.blob_key, a.inline, u.author, a.created_at`

// AttachmentsForCase lists a case's attachments, oldest first.
func (s *Store) AttachmentsForCase(ctx context.Context, caseID int64) ([]casebook.Attachment, error) {
	var as []casebook.Attachment
	if err := s.hot.SelectContext(ctx, &as, `SELECT `+attachmentColumns+` FROM attachments a JOIN updates u ON u.id = a.update_id
		WHERE a.case_id = $1 ORDER BY a.id`, caseID); err != nil {
		return nil, fmt.Errorf("attachments of case %d: %w", caseID, err)
	}
	return as, nil
}

// AttachmentByID finds an attachment with the case it belongs to.
func (s *Store) AttachmentByID(ctx context.Context, id int64) (casebook.Attachment, error) {
	var a casebook.Attachment
	err := s.db.GetContext(ctx, &a, `SELECT `+attachmentColumns+` FROM attachments a JOIN updates u ON u.id = a.update_id WHERE a.id = $1`, id)
	if err != nil {
		return a, fmt.Errorf("attachment %d: %w", id, notFound(err, casebook.ErrNotFound))
	}
	return a, nil
}
