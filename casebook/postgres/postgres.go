// Package postgres stores casebook's data in PostgreSQL through sqlx and lib/pq.
// SQL is plain and explicit; each public method that writes opens its own transaction.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/casebookhq/casebook/casebook"
)

// Store is casebook's PostgreSQL store.
type Store struct {
	db *sqlx.DB
	// locks dials the sessions advisory locks are held on (lock.go); it keeps no idle
	// connection, so each lock gets a live session of its own.
	locks *sql.DB
	// hot runs the frequent reads through prepared statements.
	hot *stmtCache
	// box seals queued temporary passwords; nil keeps them in plaintext.
	box SecretBox
	// auditKey keys the audit chain (SetAuditKey); nil writes unkeyed rows.
	auditKey []byte
}

var _ casebook.UpdateStore = (*Store)(nil)

// Open connects to the database at dsn, creating the database when it does not exist
// and the role may create it. It does not migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := connect(ctx, dsn)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "3D000" { // invalid_catalog_name
		if cerr := createDatabase(ctx, dsn); cerr != nil {
			return nil, cerr
		}
		db, err = connect(ctx, dsn)
	}
	if err != nil {
		return nil, err
	}
	lockConnector, err := pq.NewConnector(withBinaryParameters(dsn))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("database url: %w", err)
	}
	lockConnector.Dialer(newLockDialer())
	locks := sql.OpenDB(lockConnector)
	locks.SetMaxIdleConns(0)
	return &Store{db: db, locks: locks, hot: &stmtCache{db: db}}, nil
}

// DB returns the underlying handle, for adapters that keep their own tables.
func (s *Store) DB() *sqlx.DB { return s.db }

// Close closes the pool.
func (s *Store) Close() error {
	s.hot.close()
	return errors.Join(s.db.Close(), s.locks.Close())
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.PingContext(ctx)
}

func connect(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", withBinaryParameters(dsn))
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, explain(dsn, err)
	}
	return db, nil
}

// withBinaryParameters asks lib/pq to send each parameterised query in one round
// trip (Parse, Bind, Execute together) instead of first asking the server to describe
// the statement: half the round trips on every query. []byte arguments then travel
// as binary, so JSON is passed as string.
func withBinaryParameters(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return dsn
	}
	q := u.Query()
	if q.Get("binary_parameters") == "" {
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// explain turns a connection failure into a sentence a person can act on.
func explain(dsn string, err error) error {
	where := hostOf(dsn)
	var netErr net.Error
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr), errors.As(err, &netErr):
		return fmt.Errorf("cannot reach PostgreSQL at %s: is it running? (%w)", where, err)
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "28P01", "28000":
			return fmt.Errorf("PostgreSQL at %s refused the login: check the user and password in CASEBOOK_DATABASE_URL (%w)", where, err)
		case "3D000":
			return fmt.Errorf("database at %s does not exist (%w)", where, err)
		}
	}
	return fmt.Errorf("cannot use PostgreSQL at %s: %w", where, err)
}

func hostOf(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		return "the configured address"
	}
	return u.Host + u.Path
}

func createDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return fmt.Errorf("database url %s names no database", hostOf(dsn))
	}
	u.Path = "/postgres"
	db, err := connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // created meanwhile by another instance
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// inTx runs fn in a transaction, committing when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// notFound maps sql.ErrNoRows to the domain's sentinel.
func notFound(err, sentinel error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return sentinel
	}
	return err
}

func isUniqueViolation(err error) bool {
	var pqErr *pq.Error
	return errors.As(err, &pqErr) && pqErr.Code == "23505"
}
