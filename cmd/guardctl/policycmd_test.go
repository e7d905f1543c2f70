package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func guardctlPolicy(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = runPolicy(args, &o, &e)
	return code, o.String(), e.String()
}

func policyFile(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "team.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
	return path
}

const teamPolicy = `version: 1
name: team
extends: baseline
rules:
  - name: no-agents-on-payroll
    match: identity.kind == 'agent' && stmt.tables.exists(t, t.startsWith('payroll.'))
    effect: deny
    message_expr: "'agents may not touch ' + stmt.tables[0]"
tests:
  - name: agent reads payroll
    identity: {subject: copilot-7, kind: agent}
    sql: SELECT * FROM payroll.salaries
    expect: deny
    rule: no-agents-on-payroll
  - name: human reads payroll
    identity: {subject: alice, kind: human}
    sql: SELECT * FROM payroll.salaries
    expect: allow
`

func TestPolicyLint(t *testing.T) {
	code, out, _ := guardctlPolicy("lint", policyFile(t, teamPolicy))
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "ok: team@")
	assert.Contains(t, out, "11 rules, 2 tests")

	code, out, _ = guardctlPolicy("lint", "baseline")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "baseline@")

	bad := policyFile(t, strings.Replace(teamPolicy, "stmt.tables.exists", "stmt.tabels.exists", 1))
	code, _, errOut := guardctlPolicy("lint", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, bad+":6:")
	assert.Contains(t, errOut, `rule "no-agents-on-payroll"`)
	assert.Contains(t, errOut, "undefined field 'tabels'")

	code, _, errOut = guardctlPolicy("lint")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "missing FILE")
}

func TestPolicyTest(t *testing.T) {
	code, out, _ := guardctlPolicy("test", "-v", policyFile(t, teamPolicy))
	assert.Equal(t, 0, code, out)
	assert.Contains(t, out, "2 cases passed")

	code, out, _ = guardctlPolicy("test", "baseline")
	assert.Equal(t, 0, code, out)

	// A case whose expectation is wrong fails with exit 1 and shows the facts.
	wrong := teamPolicy + "  - name: agent deletes everything\n    identity: {subject: copilot-7, kind: agent}\n    sql: DELETE FROM orders\n    expect: require_approval\n"
	file := policyFile(t, wrong)
	code, out, _ = guardctlPolicy("test", file)
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "FAIL "+file+":19: agent deletes everything: effect deny, want require_approval")
	assert.Contains(t, out, `command="DELETE" effect=write has_where=false`)
	assert.Contains(t, out, "writes=[orders]")
	assert.Contains(t, out, "1 of 3 cases failed")
}

func TestPolicyExplain(t *testing.T) {
	file := policyFile(t, teamPolicy)
	code, out, errOut := guardctlPolicy("explain", file, "--as", "copilot-7:agent", "--for", "alice:human", "--role", "support",
		"--sql", "SELECT 1; UPDATE payroll.salaries SET amount = 0 WHERE id = 1")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `identity: copilot-7 kind="agent" roles=[support] on_behalf_of=alice kind="human"`)
	assert.Contains(t, out, `statement 2: UPDATE payroll.salaries SET amount = 0 WHERE id = 1`)
	assert.Contains(t, out, `command="UPDATE" effect=write has_where=true`)
	// Every matching rule is listed; the most restrictive decides.
	assert.Contains(t, out, "require_approval agent-writes-need-approval (baseline:")
	assert.Contains(t, out, "deny             no-agents-on-payroll ("+file+":5) on statement 2: agents may not touch payroll.salaries")
	assert.Contains(t, out, "decision: deny by rule no-agents-on-payroll: agents may not touch payroll.salaries")

	code, out, _ = guardctlPolicy("explain", "baseline", "--as", "app:service", "--sql", "SELECT 1")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "matching rules: none")
	assert.Contains(t, out, "decision: allow by default")

	code, _, errOut = guardctlPolicy("explain", "baseline", "--as", "app")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "--sql is required")
	code, _, _ = guardctlPolicy("frobnicate")
	assert.Equal(t, 2, code)
}
