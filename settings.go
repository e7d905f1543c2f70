package guard

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

// settingPrefix marks the DSN parameters that belong to the guard; they are
// removed before the wrapped driver sees the DSN.
const settingPrefix = "guard."

// envPrefix marks the environment variables that configure the guard:
// guard.audit.brokers is GUARD_AUDIT_BROKERS.
const envPrefix = "GUARD_"

// setting is one drop-in configuration knob.
type setting struct {
	name  string // without the prefix, e.g. "mode"
	doc   string
	apply func(c *config, v string) error
}

// settings lists every knob a program can turn without code. Keep README's
// configuration table in step with it.
var settings = []setting{
	{"mode", "enforce (default) or observe: observe records what would be blocked without blocking", func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "enforce", "":
			c.observe = false
		case "observe", "observe-only", "observe_only":
			c.observe = true
		default:
			return fmt.Errorf("want enforce or observe")
		}
		return nil
	}},
	{"dialect", "postgres, mysql or sqlite; default follows the wrapped driver", func(c *config, v string) error {
		switch d := sqlinfo.Dialect(strings.ToLower(v)); d {
		case sqlinfo.Postgres, sqlinfo.MySQL, sqlinfo.SQLite:
			c.dialect = d
		default:
			return fmt.Errorf("want postgres, mysql or sqlite")
		}
		return nil
	}},
	{"database", "database name recorded in audit and seen by policies; default read from the DSN", func(c *config, v string) error {
		c.database = v
		return nil
	}},
	{"policy", "path of a policy file; default the embedded baseline policy", func(c *config, v string) error {
		if v == "" {
			return fmt.Errorf("empty path")
		}
		c.policyPath = v
		return nil
	}},
	{"policy_watch", "on or off (default): reload the policy file when it changes", func(c *config, v string) error {
		b, err := parseOnOff(v)
		c.policyWatch = b
		return err
	}},
	{"masking", "on (default) or off", func(c *config, v string) error {
		switch strings.ToLower(v) {
		case "on", "true", "1", "":
			c.maskOff = false
		case "off", "false", "0":
			c.maskOff = true
		default:
			return fmt.Errorf("want on or off")
		}
		return nil
	}},
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no", "":
		return false, nil
	}
	return false, fmt.Errorf("want on or off")
}

// auditSettingPrefix is handed, whole, to the audit package.
const auditSettingPrefix = "audit."

func findSetting(name string) *setting {
	for i := range settings {
		if settings[i].name == name {
			return &settings[i]
		}
	}
	return nil
}

// rawSetting is a setting as found, with where it came from for messages.
type rawSetting struct {
	source string // "guard.mode" (DSN) or "GUARD_MODE" (environment)
	value  string
}

// envSettings reads GUARD_* variables.
func envSettings(environ []string) map[string]rawSetting {
	out := map[string]rawSetting{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) || len(k) == len(envPrefix) {
			continue
		}
		// Setting names use underscores between words (policy_watch,
		// audit.spool_dir); the only dot is the audit group's, so
		// GUARD_POLICY_WATCH is policy_watch and GUARD_AUDIT_SPOOL_DIR is
		// audit.spool_dir.
		name := strings.ToLower(strings.TrimPrefix(k, envPrefix))
		if rest, ok := strings.CutPrefix(name, "audit_"); ok {
			name = auditSettingPrefix + rest
		}
		out[name] = rawSetting{source: k, value: v}
	}
	return out
}

// splitDSN removes guard.* parameters from dsn and returns them. It
// understands URL DSNs (postgres://...?a=b), DSNs with a query part
// (user@tcp(host)/db?a=b, file:x.db?a=b) and key=value conninfo strings.
func splitDSN(dsn string) (string, map[string]rawSetting, error) {
	found := map[string]rawSetting{}
	if !strings.Contains(dsn, settingPrefix) {
		return dsn, found, nil
	}
	if strings.Contains(dsn, "://") || strings.Contains(dsn, "?") {
		// A URL's password may not hold '?', so there the first one starts
		// the query; a MySQL-style password may, so elsewhere the last one does.
		base, query, ok := strings.Cut(dsn, "?")
		if !strings.Contains(dsn, "://") {
			if i := strings.LastIndex(dsn, "?"); i >= 0 {
				base, query = dsn[:i], dsn[i+1:]
			}
		}
		if !ok {
			return dsn, found, nil
		}
		var kept []string
		for _, part := range strings.Split(query, "&") {
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			key, err := url.QueryUnescape(k)
			if err != nil && strings.HasPrefix(k, settingPrefix) {
				return "", nil, &ConfigError{Setting: k, Value: v, Err: fmt.Errorf("bad URL escaping: %w", err)}
			}
			if err != nil || !strings.HasPrefix(key, settingPrefix) {
				kept = append(kept, part)
				continue
			}
			val, err := url.QueryUnescape(v)
			if err != nil {
				return "", nil, &ConfigError{Setting: key, Value: v, Err: fmt.Errorf("bad URL escaping: %w", err)}
			}
			found[strings.TrimPrefix(key, settingPrefix)] = rawSetting{source: key, value: val}
		}
		if len(found) == 0 {
			return dsn, found, nil
		}
		if len(kept) == 0 {
			return base, found, nil
		}
		return base + "?" + strings.Join(kept, "&"), found, nil
	}
	// key=value conninfo: values may be single-quoted with backslash escapes.
	var kept []string
	for i := 0; i < len(dsn); {
		for i < len(dsn) && dsn[i] == ' ' {
			i++
		}
		if i >= len(dsn) {
			break
		}
		start := i
		for i < len(dsn) && dsn[i] != '=' && dsn[i] != ' ' {
			i++
		}
		key := dsn[start:i]
		var val strings.Builder
		if i < len(dsn) && dsn[i] == '=' {
			i++
			if i < len(dsn) && dsn[i] == '\'' {
				i++
				for i < len(dsn) && dsn[i] != '\'' {
					if dsn[i] == '\\' && i+1 < len(dsn) {
						i++
					}
					val.WriteByte(dsn[i])
					i++
				}
				if i >= len(dsn) {
					return "", nil, &ConfigError{Setting: key, Value: val.String(), Err: fmt.Errorf("unterminated quoted value")}
				}
				i++
			} else {
				for i < len(dsn) && dsn[i] != ' ' {
					val.WriteByte(dsn[i])
					i++
				}
			}
		}
		if strings.HasPrefix(key, settingPrefix) {
			found[strings.TrimPrefix(key, settingPrefix)] = rawSetting{source: key, value: val.String()}
		} else {
			kept = append(kept, dsn[start:i])
		}
	}
	if len(found) == 0 {
		return dsn, found, nil
	}
	return strings.Join(kept, " "), found, nil
}

// applySettings applies environment settings, then DSN settings over them.
func applySettings(c *config, env, dsn map[string]rawSetting) error {
	merged := map[string]rawSetting{}
	for k, v := range env {
		merged[k] = v
	}
	for k, v := range dsn {
		merged[k] = v
	}
	names := make([]string, 0, len(merged))
	for k := range merged {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := merged[name]
		if strings.HasPrefix(name, auditSettingPrefix) {
			if c.auditConfig == nil {
				c.auditConfig = map[string]string{}
			}
			c.auditConfig[name] = raw.value
			continue
		}
		s := findSetting(name)
		if s == nil && strings.HasPrefix(raw.source, envPrefix) {
			// Other tools share the GUARD_ prefix (test DSNs, for one); only a
			// misspelled DSN parameter is certainly meant for us.
			continue
		}
		if s == nil {
			return &ConfigError{Setting: raw.source, Value: raw.value, Err: fmt.Errorf("unknown setting")}
		}
		if err := s.apply(c, raw.value); err != nil {
			return &ConfigError{Setting: raw.source, Value: raw.value, Err: err}
		}
	}
	return nil
}

// databaseFromDSN finds the database name in the common DSN forms, for audit.
func databaseFromDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.Host != "" {
		return strings.TrimPrefix(u.Path, "/")
	}
	if i := strings.Index(dsn, ")/"); i >= 0 { // mysql: user@tcp(host)/db?params
		db, _, _ := strings.Cut(dsn[i+2:], "?")
		return db
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "dbname="); ok {
			return strings.Trim(v, "'")
		}
	}
	if p, ok := strings.CutPrefix(dsn, "file:"); ok {
		p, _, _ = strings.Cut(p, "?")
		return p
	}
	return ""
}

// environ is os.Environ, replaceable in tests.
var environ = os.Environ
