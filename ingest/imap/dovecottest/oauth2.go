package dovecottest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// oauth2 adds the oauth2 passdb ahead of the passwd-file one, with a settings file
// that forces introspection of every token (Dovecot would otherwise try to validate
// JWTs locally).
func (s *Server) oauth2(conf, introspectionURL string) string {
	ext := filepath.Join(s.dir, "dovecot-oauth2.conf.ext")
	settings := fmt.Sprintf(`introspection_mode = post
introspection_url = %s
username_attribute = username
active_attribute = active
active_value = true
force_introspection = yes
`, introspectionURL)
	if err := os.WriteFile(ext, []byte(settings), 0o644); err != nil {
		s.t.Fatalf("dovecottest: %v", err)
	}
	conf = strings.Replace(conf, "auth_mechanisms = plain login\n", "auth_mechanisms = plain login xoauth2 oauthbearer\n", 1)
	return strings.Replace(conf, "passdb {\n", fmt.Sprintf("passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s\n}\npassdb {\n", ext), 1)
}
