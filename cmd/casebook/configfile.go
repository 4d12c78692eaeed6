package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// A config file holds the same CASEBOOK_* names as the environment, one KEY=VALUE a
// line, '#' starting a comment line, a value optionally in single or double quotes.
// That is the format of systemd's EnvironmentFile= and docker's --env-file, so one file
// serves the unit, a container and `casebook --config` alike, and there is one name for
// each setting everywhere. Precedence: command line, then environment, then the file,
// then the default.

// configLookup returns the lookup applyEnv reads settings through: the environment,
// then the config file named by --config or CASEBOOK_CONFIG, if any.
func configLookup(fs *flag.FlagSet, env func(string) (string, bool)) (func(string) (string, bool), error) {
	path := ""
	if f := fs.Lookup("config"); f != nil {
		path = f.Value.String()
	}
	if path == "" {
		path, _ = env(envName("config"))
	}
	if path == "" {
		return env, nil
	}
	file, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	known := knownSettings()
	var unknown []string
	for k := range file {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("config file %s: unknown setting(s) %s: see `casebook COMMAND -h` for the flags", path, strings.Join(unknown, ", "))
	}
	return func(name string) (string, bool) {
		if v, ok := env(name); ok {
			return v, true
		}
		v, ok := file[name]
		return v, ok
	}, nil
}

// readConfigFile reads a config file.
func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	m, err := parseConfigFile(f)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	return m, nil
}

// parseConfigFile parses KEY=VALUE lines. A repeated key is an error rather than a
// silent override: in a file that holds production settings it is a mistake.
func parseConfigFile(r io.Reader) (map[string]string, error) {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, val, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || !validSettingName(key) {
			// The line is not echoed: it may hold a secret.
			return nil, fmt.Errorf("line %d: want CASEBOOK_NAME=value", n)
		}
		if key == envName("config") {
			return nil, fmt.Errorf("line %d: %s cannot name another file", n, key)
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("line %d: %s is set twice", n, key)
		}
		m[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

func validSettingName(k string) bool {
	rest, ok := strings.CutPrefix(k, "CASEBOOK_")
	if !ok || rest == "" {
		return false
	}
	return strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == ""
}

// knownSettings names every variable some command reads, with the _FILE form of
// secrets: a file shared by all commands may hold settings one command ignores, but a
// misspelt name must not pass unnoticed.
func knownSettings() map[string]bool {
	known := map[string]bool{}
	for _, cmd := range commands() {
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		a := &app{}
		a.cfg.commonFlags(fs)
		if cmd.flags != nil {
			cmd.flags(fs, a)
		}
		fs.VisitAll(func(f *flag.Flag) {
			known[envName(f.Name)] = true
			if secretFlags[f.Name] {
				known[envName(f.Name)+"_FILE"] = true
			}
		})
	}
	return known
}
