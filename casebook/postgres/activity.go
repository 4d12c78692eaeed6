package postgres

import (
	"context"
	"fmt"
)

// Activity counts what a channel has done: what `casebook demo` reports after its
// start-up, read back from the tables rather than from the components' own say-so.
type Activity struct {
	// Updates are updates from the channel; Attachments the files on them.
	Updates     int `db:"updates"`
	Attachments int `db:"attachments"`
	// Quarantined and Ignored are the channel's messages that went to no case.
	Quarantined int `db:"quarantined"`
	Ignored     int `db:"ignored"`
	// Mails of kind, queued and sent.
	MailsQueued int `db:"mails_queued"`
	MailsSent   int `db:"mails_sent"`
}

// ActivityOf counts source's updates, their attachments and its quarantine, and the
// outbox mails of kind.
func (s *Store) ActivityOf(ctx context.Context, source, kind string) (Activity, error) {
	var a Activity
	err := s.db.GetContext(ctx, &a, `SELECT
		(SELECT count(*) FROM updates WHERE source = $1) AS updates,
		(SELECT count(*) FROM attachments a JOIN updates u ON u.id = a.update_id WHERE u.source = $1) AS attachments,
		(SELECT count(*) FROM quarantine WHERE source = $1 AND kind = 'quarantined') AS quarantined,
		(SELECT count(*) FROM quarantine WHERE source = $1 AND kind = 'ignored') AS ignored,
		(SELECT count(*) FROM outbox WHERE kind = $2) AS mails_queued,
		(SELECT count(*) FROM outbox WHERE kind = $2 AND status = 'sent') AS mails_sent`, source, kind)
	if err != nil {
		return Activity{}, fmt.Errorf("activity of %s: %w", source, err)
	}
	return a, nil
}
