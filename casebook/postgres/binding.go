package postgres

import (
	"context"
	"fmt"

	"github.com/casebookhq/casebook/casebook"
)

// Bind ties a chat channel to an org, replacing an earlier binding of the same channel.
func (s *Store) Bind(ctx context.Context, b casebook.Binding) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO channel_bindings (platform, workspace, channel, org_id) VALUES ($1, $2, $3, $4)
		ON CONFLICT (platform, channel, workspace) DO UPDATE SET org_id = EXCLUDED.org_id`, b.Platform, b.Workspace, b.Channel, b.OrgID)
	if err != nil {
		return fmt.Errorf("bind %s channel %s: %w", b.Platform, b.Channel, err)
	}
	return nil
}

// BindingFor finds the org a chat channel is bound to. A binding made for the exact
// workspace wins over one made without a workspace.
func (s *Store) BindingFor(ctx context.Context, platform casebook.Source, workspace, channel string) (casebook.Binding, error) {
	var b casebook.Binding
	err := s.db.GetContext(ctx, &b, `SELECT platform, workspace, channel, org_id FROM channel_bindings
		WHERE platform = $1 AND channel = $3 AND workspace IN ($2, '') ORDER BY workspace = '' LIMIT 1`, platform, workspace, channel)
	if err != nil {
		return b, fmt.Errorf("%s channel %s: %w", platform, channel, notFound(err, casebook.ErrBindingMissing))
	}
	return b, nil
}
