package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/casebookhq/casebook/casebook"
)

// AddOrg creates an organisation.
func (s *Store) AddOrg(ctx context.Context, name, domain string) (casebook.Org, error) {
	name, domain = strings.TrimSpace(name), strings.ToLower(strings.TrimSpace(domain))
	if name == "" {
		return casebook.Org{}, fmt.Errorf("add org: %w: name is empty", casebook.ErrInvalidInput)
	}
	var o casebook.Org
	err := s.db.GetContext(ctx, &o, `INSERT INTO orgs (name, domain) VALUES ($1, $2)
		RETURNING id, name, domain, created_at`, name, domain)
	if isUniqueViolation(err) {
		return o, fmt.Errorf("add org %q: %w", name, casebook.ErrOrgExists)
	}
	if err != nil {
		return o, fmt.Errorf("add org %q: %w", name, err)
	}
	return o, nil
}

// OrgByName finds an org by name, ignoring letter case.
func (s *Store) OrgByName(ctx context.Context, name string) (casebook.Org, error) {
	var o casebook.Org
	err := s.db.GetContext(ctx, &o, `SELECT id, name, domain, created_at FROM orgs WHERE lower(name) = lower($1)`, strings.TrimSpace(name))
	if err != nil {
		return o, fmt.Errorf("org %q: %w", name, notFound(err, casebook.ErrOrgNotFound))
	}
	return o, nil
}

// OrgByID finds an org by id.
func (s *Store) OrgByID(ctx context.Context, id int64) (casebook.Org, error) {
	var o casebook.Org
	err := s.db.GetContext(ctx, &o, `SELECT id, name, domain, created_at FROM orgs WHERE id = $1`, id)
	if err != nil {
		return o, fmt.Errorf("org %d: %w", id, notFound(err, casebook.ErrOrgNotFound))
	}
	return o, nil
}

// Orgs lists every org by name.
func (s *Store) Orgs(ctx context.Context) ([]casebook.Org, error) {
	var os []casebook.Org
	if err := s.db.SelectContext(ctx, &os, `SELECT id, name, domain, created_at FROM orgs ORDER BY lower(name)`); err != nil {
		return nil, fmt.Errorf("orgs: %w", err)
	}
	return os, nil
}
