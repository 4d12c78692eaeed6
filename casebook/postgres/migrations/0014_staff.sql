-- Staff work in the browser: the whole support team's case list, search, and the
-- quarantine queue with who decided each message.

-- Who released or dropped a quarantined message: the staff member vouching for it.
-- NULL for decisions taken at the shell without naming a staff member, and before this.
ALTER TABLE quarantine ADD COLUMN resolved_by bigint REFERENCES users (id);

-- Staff list every case by most recent activity, one status at a time, keyset by
-- (updated_at, id): the org and owner indexes do not serve a list without either.
CREATE INDEX cases_activity_idx ON cases (status, updated_at DESC, id DESC);

-- Search by subject and by requester (address or name) with a substring: trigram
-- indexes answer ILIKE '%text%' without reading every case.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX cases_subject_trgm_idx ON cases USING gin (subject gin_trgm_ops);
CREATE INDEX cases_requester_idx ON cases (requester_id);
CREATE INDEX users_email_trgm_idx ON users USING gin (email gin_trgm_ops);
CREATE INDEX users_name_trgm_idx ON users USING gin (name gin_trgm_ops);
