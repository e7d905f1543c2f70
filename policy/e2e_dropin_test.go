package policy_test

import (
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard"
	"github.com/guardedsql/guard/policy"
)

// TestEndToEndDropIn runs the team policy's production matrix through the
// unmodified drop-in registration: sql.Open("guarded-postgres", dsn) with
// the policy file named in the DSN (guard.policy=...). Without a reviewer
// configured, statements that need approval are refused.
func TestEndToEndDropIn(t *testing.T) {
	dsn := pgDSN(t)
	dropSchemaAtEnd(t, dsn)
	path := t.TempDir() + "/team.yaml"
	require.NoError(t, os.WriteFile(path, []byte(sch(teamPolicy)), 0o600))
	raw, err := sql.Open("postgres", dsn)
	require.NoError(t, err)
	defer raw.Close()
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sql.Open(guard.PostgresDriverName, dsn+sep+"guard.policy="+path+"&guard.masking=off")
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	require.NoError(t, db.PingContext(appCtx))
	e := &e2eEnv{raw: raw, db: db, dirty: true}
	n := 0
	for _, st := range teamStatements["production"] {
		for who := range e2eIDs {
			n++
			e.run(t, 1000+n, who, st)
		}
	}
}

// TestDropInBadPolicy: a policy file that does not load stops the guarded
// database with the file:line, and never falls back to
// something more permissive.
func TestDropInBadPolicy(t *testing.T) {
	dsn := pgDSN(t)
	path := t.TempDir() + "/broken.yaml"
	require.NoError(t, os.WriteFile(path, []byte("name: broken\nrules:\n  - name: typo\n    match: stmt.has_wher\n    effect: deny\n"), 0o600))
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	db, err := sql.Open(guard.PostgresDriverName, dsn+sep+"guard.policy="+path)
	if err == nil { // reported at Open or, at the latest, at first use
		defer db.Close()
		_, err = db.ExecContext(appCtx, "SELECT 1")
	}
	require.Error(t, err)
	require.ErrorIs(t, err, guard.ErrConfig)
	require.ErrorIs(t, err, policy.ErrInvalid)
	require.Contains(t, err.Error(), path+":4:12: rule \"typo\"")
}
