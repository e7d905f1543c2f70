package guard

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

func TestSplitDSN_StripsGuardParametersInEveryForm(t *testing.T) {
	cases := []struct {
		name, dsn, want string
		settings        map[string]string
	}{
		{"url", "postgres://u:p@h:5432/db?sslmode=disable&guard.mode=observe&guard.audit.topic=t%2Fx",
			"postgres://u:p@h:5432/db?sslmode=disable", map[string]string{"mode": "observe", "audit.topic": "t/x"}},
		{"url only guard", "postgres://h/db?guard.mode=observe", "postgres://h/db", map[string]string{"mode": "observe"}},
		{"conninfo", "host=h dbname=db guard.mode=observe sslmode=disable guard.policy='/a b/p.yaml'",
			"host=h dbname=db sslmode=disable", map[string]string{"mode": "observe", "policy": "/a b/p.yaml"}},
		{"mysql", "root:pa?ss@tcp(127.0.0.1:3306)/test?parseTime=true&guard.dialect=mysql",
			"root:pa?ss@tcp(127.0.0.1:3306)/test?parseTime=true", map[string]string{"dialect": "mysql"}},
		{"sqlite", "file:x.db?cache=shared&guard.masking=off", "file:x.db?cache=shared", map[string]string{"masking": "off"}},
		{"untouched", "host=h dbname=db", "host=h dbname=db", map[string]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, found, err := splitDSN(tc.dsn)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			vals := map[string]string{}
			for k, v := range found {
				vals[k] = v.value
			}
			require.Equal(t, tc.settings, vals)
		})
	}
	_, _, err := splitDSN("host=h guard.policy='unterminated")
	require.ErrorIs(t, err, ErrConfig)
}

func TestSettings_PrecedenceAndErrorsNameTheSetting(t *testing.T) {
	env := envSettings([]string{"GUARD_MODE=observe", "GUARD_DIALECT=mysql", "GUARD_AUDIT_SPOOL_DIR=/tmp/s", "GUARD_TEST_PG_DSN=x", "PATH=/bin"})
	require.Equal(t, "observe", env["mode"].value)
	require.Equal(t, "/tmp/s", env["audit.spool_dir"].value)

	// Every multi-word setting is reachable from the environment.
	var wc config
	require.NoError(t, applySettings(&wc, envSettings([]string{"GUARD_POLICY_WATCH=on"}), nil))
	require.True(t, wc.policyWatch, "GUARD_POLICY_WATCH must set policy_watch")

	// DSN wins over the environment.
	var c config
	_, dsn, err := splitDSN("postgres://h/db?guard.mode=enforce")
	require.NoError(t, err)
	require.NoError(t, applySettings(&c, env, dsn))
	require.False(t, c.observe)
	require.Equal(t, sqlinfo.MySQL, c.dialect)
	require.Equal(t, "/tmp/s", c.auditConfig["audit.spool_dir"])

	// Options win over both.
	cfg, err := buildConfig(nil, dsn, []Option{WithObserveOnly(true)})
	require.NoError(t, err)
	require.True(t, cfg.observe)

	// A bad value is an error naming the setting, never a silent default.
	_, dsn, _ = splitDSN("postgres://h/db?guard.mode=loud")
	err = applySettings(&c, nil, dsn)
	var ce *ConfigError
	require.True(t, errors.As(err, &ce))
	require.Equal(t, "guard.mode", ce.Setting)
	require.ErrorIs(t, err, ErrConfig)
	require.Contains(t, err.Error(), "guard.mode")

	err = applySettings(&c, envSettings([]string{"GUARD_MASKING=maybe"}), nil)
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "GUARD_MASKING", ce.Setting)

	// A misspelled DSN parameter is an error; an unrelated GUARD_ variable is not.
	_, dsn, _ = splitDSN("postgres://h/db?guard.moed=observe")
	require.ErrorAs(t, applySettings(&c, nil, dsn), &ce)
	require.Equal(t, "guard.moed", ce.Setting)
}

func TestDatabaseFromDSN(t *testing.T) {
	require.Equal(t, "shop", databaseFromDSN("postgres://u@h:5432/shop?sslmode=disable"))
	require.Equal(t, "shop", databaseFromDSN("host=h dbname=shop"))
	require.Equal(t, "test", databaseFromDSN("root@tcp(127.0.0.1:3306)/test?parseTime=true"))
	require.Equal(t, "x.db", databaseFromDSN("file:x.db?cache=shared"))
}

func FuzzSplitDSN(f *testing.F) {
	for _, s := range []string{"postgres://h/db?guard.mode=observe", "host=h guard.policy='a b'", "a?guard.x=%zz", "guard.=", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, dsn string) {
		out, found, err := splitDSN(dsn)
		if err != nil {
			return
		}
		for k, v := range found {
			if !strings.HasPrefix(v.source, settingPrefix) || v.source != settingPrefix+k {
				t.Fatalf("setting %q has source %q", k, v.source)
			}
		}
		if len(found) == 0 && out != dsn {
			t.Fatalf("dsn changed without settings: %q -> %q", dsn, out)
		}
	})
}
