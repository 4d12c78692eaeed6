package main

import (
	"log/slog"
	"strings"
)

// redactAttr is the loggers' last guard against secrets. Code never logs a password,
// a token or file content on purpose; this catches a mistake: an attribute whose key
// names a secret is masked, and a URL's password is cut from any string value.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, s := range []string{"password", "passwd", "secret", "token", "authorization", "cookie"} {
		if strings.Contains(k, s) {
			return slog.String(a.Key, masked)
		}
	}
	if a.Value.Kind() == slog.KindString {
		if v := a.Value.String(); strings.Contains(v, "://") {
			fields := strings.Fields(v)
			changed := false
			for i, f := range fields {
				if r := redactURL(f); r != f {
					fields[i], changed = r, true
				}
			}
			if changed {
				return slog.String(a.Key, strings.Join(fields, " "))
			}
		}
	}
	return a
}
