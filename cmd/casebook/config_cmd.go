package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
)

// masked stands for a secret that is set; an unset secret prints empty.
const masked = "********"

// setting is one line of `casebook config`.
type setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func configCommand() command {
	var fset *flag.FlagSet
	return command{
		help: "print the effective configuration of `casebook serve`, secrets masked, and where each value came from",
		flags: func(fs *flag.FlagSet, a *app) {
			fset = fs
			if f := serveCommand().flags; f != nil {
				f(fs, a)
			}
		},
		run: func(ctx context.Context, a *app, _ []string) error {
			file := map[string]string{}
			if a.cfg.ConfigFile != "" {
				m, err := readConfigFile(a.cfg.ConfigFile)
				if err != nil {
					return err
				}
				file = m
			}
			var out []setting
			fset.VisitAll(func(f *flag.Flag) {
				if f.Name == "json" {
					return
				}
				s := setting{Name: envName(f.Name), Value: maskValue(f.Name, f.Value.String()), Source: origin(f, file)}
				// Two settings have a default that is not a fixed value.
				switch {
				case f.Name == "token-key" && s.Value == "":
					s.Source = "database: generated at first start, replaced by `casebook token-key rotate`"
				case f.Name == "reply-address" && s.Value == "" && a.replyAddress() != "":
					s.Value, s.Source = a.replyAddress(), "the address of --mail-from"
				}
				out = append(out, s)
			})
			sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
			for _, s := range out {
				if err := a.print(s, fmt.Sprintf("%s=%s\t# %s", s.Name, s.Value, s.Source)); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// origin says where a flag's value came from, by the precedence parseFlags applies:
// a value that matches no source was given on the command line.
func origin(f *flag.Flag, file map[string]string) string {
	name := envName(f.Name)
	v := f.Value.String()
	if secretFlags[f.Name] {
		if _, ok := os.LookupEnv(name); !ok {
			if _, ok := os.LookupEnv(name + "_FILE"); ok {
				return "environment " + name + "_FILE"
			}
			if _, ok := file[name+"_FILE"]; ok && file[name] == "" {
				return "config file " + name + "_FILE"
			}
		}
	}
	same := func(s string) bool {
		if _, isList := f.Value.(listValue); isList {
			return strings.Join(strings.Fields(s), " ") == v
		}
		return s == v
	}
	if e, ok := os.LookupEnv(name); ok && same(e) {
		return "environment"
	}
	if fv, ok := file[name]; ok && same(fv) {
		return "config file"
	}
	if v == f.DefValue {
		return "default"
	}
	return "command line"
}

// maskValue hides secrets and the passwords inside URLs and key=value connection
// strings (a database or mailbox URL, a libpq conninfo).
func maskValue(flagName, v string) string {
	if secretFlags[flagName] && v != "" {
		return masked
	}
	if !strings.Contains(v, "://") {
		v = conninfoPassword.ReplaceAllString(v, "${1}="+masked)
	}
	fields := strings.Fields(v)
	for i, f := range fields {
		fields[i] = redactURL(f)
	}
	if len(fields) == 0 {
		return v
	}
	return strings.Join(fields, " ")
}

// conninfoPassword finds a password in a libpq key=value string, where a value may be
// quoted and hold spaces (password='a b').
var conninfoPassword = regexp.MustCompile(`(?i)\b((?:ssl)?password)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// redactURL replaces a URL's password, in its user part or its query
// (?password=, which lib/pq accepts), with xxxxx; anything else comes back as it was.
func redactURL(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		// An unparsable URL may still hold a password: show none of it.
		return masked
	}
	if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
		for _, k := range []string{"password", "sslpassword"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
