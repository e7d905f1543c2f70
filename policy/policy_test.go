package policy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// facts builds an analysis by hand, so these tests do not depend on the analyzer.
func facts(stmts ...sqlinfo.Statement) *sqlinfo.Analysis {
	for i := range stmts {
		if stmts[i].Limit == 0 {
			stmts[i].Limit = -1
		}
	}
	return &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: stmts}
}

func rel(s string) sqlinfo.Relation {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return sqlinfo.Relation{Schema: s[:i], Name: s[i+1:]}
	}
	return sqlinfo.Relation{Name: s}
}

var (
	sel      = sqlinfo.Statement{Text: "SELECT * FROM orders", Command: "SELECT", Effect: sqlinfo.Read, Reads: []sqlinfo.Relation{rel("orders")}}
	selPII   = sqlinfo.Statement{Text: "SELECT email FROM crm.customers", Command: "SELECT", Effect: sqlinfo.Read, Reads: []sqlinfo.Relation{rel("crm.customers")}}
	ins      = sqlinfo.Statement{Text: "INSERT INTO orders VALUES (1)", Command: "INSERT", Effect: sqlinfo.Write, Writes: []sqlinfo.Relation{rel("orders")}}
	upd      = sqlinfo.Statement{Text: "UPDATE orders SET x=1 WHERE id=1", Command: "UPDATE", Effect: sqlinfo.Write, Writes: []sqlinfo.Relation{rel("orders")}, HasWhere: true}
	updAll   = sqlinfo.Statement{Text: "UPDATE orders SET x=1", Command: "UPDATE", Effect: sqlinfo.Write, Writes: []sqlinfo.Relation{rel("orders")}}
	delTrue  = sqlinfo.Statement{Text: "DELETE FROM orders WHERE 1=1", Command: "DELETE", Effect: sqlinfo.Write, Writes: []sqlinfo.Relation{rel("orders")}, HasWhere: true, WhereAlwaysTrue: true}
	drop     = sqlinfo.Statement{Text: "DROP TABLE orders", Command: "DROP TABLE", Effect: sqlinfo.DDL, Writes: []sqlinfo.Relation{rel("orders")}}
	trunc    = sqlinfo.Statement{Text: "TRUNCATE orders", Command: "TRUNCATE TABLE", Effect: sqlinfo.DDL, Writes: []sqlinfo.Relation{rel("orders")}}
	alterDel = sqlinfo.Statement{Text: "ALTER TABLE orders DROP COLUMN x", Command: "ALTER TABLE", Effect: sqlinfo.DDL, Writes: []sqlinfo.Relation{rel("orders")}}
	alterAdd = sqlinfo.Statement{Text: "ALTER TABLE orders ADD COLUMN y int", Command: "ALTER TABLE", Effect: sqlinfo.DDL, Writes: []sqlinfo.Relation{rel("orders")}}
	grant    = sqlinfo.Statement{Text: "GRANT ALL ON orders TO public", Command: "GRANT", Effect: sqlinfo.DCL, Dangers: []sqlinfo.Danger{sqlinfo.PrivilegeChange}}
	setRole  = sqlinfo.Statement{Text: "SET ROLE postgres", Command: "SET", Effect: sqlinfo.Utility, Dangers: []sqlinfo.Danger{sqlinfo.SessionChange}}
	copyProg = sqlinfo.Statement{Text: "COPY orders TO PROGRAM 'x'", Command: "COPY", Effect: sqlinfo.Read, Dangers: []sqlinfo.Danger{sqlinfo.ProgramExecution}}
	doBlock  = sqlinfo.Statement{Text: "DO $$ ... $$", Command: "DO", Effect: sqlinfo.Unknown, Dangers: []sqlinfo.Danger{sqlinfo.DynamicSQL}}
	garbage  = sqlinfo.Statement{Text: "SELEC", Effect: sqlinfo.Unknown, Error: "syntax error at or near \"SELEC\""}
	cteWrite = sqlinfo.Statement{Text: "WITH d AS (DELETE ...) SELECT", Command: "SELECT", Effect: sqlinfo.Write, Writes: []sqlinfo.Relation{rel("orders")}, HasWhere: true, Dangers: []sqlinfo.Danger{sqlinfo.HiddenWrite}}

	svc   = identity.Identity{Subject: "billing", Kind: identity.Service}
	human = identity.Identity{Subject: "alice@example.com", Kind: identity.Human, Roles: []string{"analyst"}}
	agent = identity.Identity{Subject: "copilot-7", Kind: identity.Agent, OnBehalfOf: &human}
)

func decide(t testing.TB, p *Policy, id identity.Identity, stmts ...sqlinfo.Statement) Decision {
	t.Helper()
	return p.Decide(context.Background(), &Input{Identity: id, Analysis: facts(stmts...), Request: Request{Kind: KindExec}})
}

func TestBaselineDecisionsOnFacts(t *testing.T) {
	b := Baseline()
	cases := []struct {
		id     identity.Identity
		st     []sqlinfo.Statement
		effect Effect
		rule   string
	}{
		{svc, []sqlinfo.Statement{sel}, Allow, ""},
		{agent, []sqlinfo.Statement{sel}, Allow, ""},
		{identity.Anonymous(), []sqlinfo.Statement{sel}, Allow, ""},
		{svc, []sqlinfo.Statement{ins}, Allow, ""},
		{svc, []sqlinfo.Statement{upd}, Allow, ""},
		{human, []sqlinfo.Statement{alterAdd}, Allow, ""},
		{svc, []sqlinfo.Statement{updAll}, Deny, "deny-unbounded-write"},
		{svc, []sqlinfo.Statement{delTrue}, Deny, "deny-unbounded-write"},
		{human, []sqlinfo.Statement{drop}, Deny, "deny-drop"},
		{svc, []sqlinfo.Statement{trunc}, Deny, "deny-truncate"},
		{human, []sqlinfo.Statement{alterDel}, Deny, "deny-alter-drop"},
		{human, []sqlinfo.Statement{grant}, Deny, "deny-privilege-change"},
		{svc, []sqlinfo.Statement{setRole}, Deny, "deny-session-change"},
		{svc, []sqlinfo.Statement{copyProg}, Deny, "deny-server-file-access"},
		{svc, []sqlinfo.Statement{doBlock}, Deny, "deny-unknown-statement"},
		{svc, []sqlinfo.Statement{garbage}, Deny, "deny-unknown-statement"},
		{agent, []sqlinfo.Statement{ins}, RequireApproval, "agent-writes-need-approval"},
		{agent, []sqlinfo.Statement{cteWrite}, RequireApproval, "agent-writes-need-approval"},
		{agent, []sqlinfo.Statement{alterAdd}, RequireApproval, "agent-writes-need-approval"},
		{agent, []sqlinfo.Statement{drop}, Deny, "deny-drop"},
		// The most restrictive statement of a string decides.
		{svc, []sqlinfo.Statement{sel, drop}, Deny, "deny-drop"},
		{agent, []sqlinfo.Statement{sel, ins, sel}, RequireApproval, "agent-writes-need-approval"},
		{agent, []sqlinfo.Statement{ins, drop}, Deny, "deny-drop"},
	}
	for _, c := range cases {
		d := decide(t, b, c.id, c.st...)
		assert.Equal(t, c.effect, d.Effect, "%s: %s", c.id, c.st[len(c.st)-1].Text)
		assert.Equal(t, c.rule, d.Rule, "%s: %s", c.id, c.st[len(c.st)-1].Text)
		assert.Equal(t, b.Version(), d.Policy)
		assert.False(t, d.Observed)
		assert.NotEmpty(t, d.Message)
	}
	d := decide(t, b, svc, updAll)
	assert.Equal(t, "UPDATE would touch every row of orders (no WHERE)", d.Message)
	d = decide(t, b, svc, delTrue)
	assert.Equal(t, "DELETE would touch every row of orders (its WHERE is always true)", d.Message)
	d = decide(t, b, svc, garbage)
	assert.Contains(t, d.Message, `syntax error at or near "SELEC"`)
	// No analysis at all is treated as unknown.
	d = b.Decide(context.Background(), &Input{Identity: svc})
	assert.Equal(t, Deny, d.Effect)
}

const semantics = `
version: 1
name: semantics
env: {env: production}
default: deny
rules:
  - name: reads
    match: stmt.effect == 'read'
    effect: allow
  - name: audit-pii
    match: stmt.reads.exists(r, r.startsWith('crm.'))
    effect: audit
    message_expr: "'reads PII from ' + stmt.reads[0]"
  - name: agents-writing
    match: identity.kind == 'agent' && stmt.effect == 'write'
    effect: require_approval
  - name: humans-write
    match: identity.principal.kind == 'human' && stmt.effect == 'write'
    effect: allow
  - name: delegated-by-alice
    match: identity.on_behalf_of.subject == 'alice@example.com' && 'crm.customers' in stmt.reads
    effect: audit
  - name: broken-when-no-writes
    match: stmt.command == 'DELETE' && stmt.writes[0] == 'x'
    effect: allow
  - name: production-ddl
    match: env.env == 'production' && stmt.effect == 'ddl'
    effect: deny
    message_expr: "'no ' + stmt.command + ' in ' + env.env"
  - name: analysts-only-in-tx
    match: "'analyst' in identity.roles && request.kind == 'exec' && !request.in_transaction && stmt.effect == 'write'"
    effect: require_approval
`

func TestSemantics(t *testing.T) {
	p, err := Parse([]byte(semantics))
	require.NoError(t, err)
	ctx := context.Background()

	// Default for no match.
	d := decide(t, p, svc, garbage)
	assert.Equal(t, Deny, d.Effect)
	assert.Empty(t, d.Rule)

	// audit beats allow; its message is computed.
	d = decide(t, p, svc, selPII)
	assert.Equal(t, Audit, d.Effect)
	assert.Equal(t, "audit-pii", d.Rule)
	assert.Equal(t, "reads PII from crm.customers", d.Message)

	// require_approval beats allow (humans-write matches too: the principal is alice).
	d = decide(t, p, agent, ins)
	assert.Equal(t, RequireApproval, d.Effect)
	assert.Equal(t, "agents-writing", d.Rule)

	d = decide(t, p, human, ins)
	assert.Equal(t, RequireApproval, d.Effect, "analyst outside a transaction")
	d = p.Decide(ctx, &Input{Identity: human, Analysis: facts(ins), Request: Request{Kind: KindExec, InTransaction: true}})
	assert.Equal(t, Allow, d.Effect)
	assert.Equal(t, "humans-write", d.Rule)

	// Delegation is visible.
	d = decide(t, p, agent, selPII)
	assert.Equal(t, Audit, d.Effect)

	// A rule that fails to evaluate denies and says which.
	delNoWrites := sqlinfo.Statement{Text: "DELETE", Command: "DELETE", Effect: sqlinfo.Write, HasWhere: true}
	d = decide(t, p, human, delNoWrites)
	assert.Equal(t, Deny, d.Effect)
	assert.Equal(t, "broken-when-no-writes", d.Rule)
	assert.Contains(t, d.Message, `rule "broken-when-no-writes" failed to evaluate`)

	// env labels, and WithEnv overriding them.
	d = decide(t, p, human, drop)
	assert.Equal(t, Deny, d.Effect)
	assert.Equal(t, "no DROP TABLE in production", d.Message)
	staging, err := Parse([]byte(semantics), WithEnv(map[string]string{"env": "staging"}))
	require.NoError(t, err)
	d = decide(t, staging, human, drop)
	assert.Equal(t, Deny, d.Effect)
	assert.Empty(t, d.Rule, "default deny, not the production rule")

	// Several statements: the most restrictive part decides.
	d = decide(t, p, svc, sel, selPII, sel)
	assert.Equal(t, Audit, d.Effect)

	// Explain lists every match.
	ex := p.Explain(ctx, &Input{Identity: agent, Analysis: facts(ins)})
	var names []string
	for _, m := range ex.Matches {
		names = append(names, m.Rule.Name)
	}
	assert.Equal(t, []string{"agents-writing", "humans-write"}, names)
	assert.Equal(t, RequireApproval, ex.Decision.Effect)
}

func TestObserveMode(t *testing.T) {
	src := "name: watch\nmode: observe\nrules:\n  - {name: no-drop, match: \"stmt.command.startsWith('DROP')\", effect: deny}\n"
	p, err := Parse([]byte(src))
	require.NoError(t, err)
	assert.Equal(t, Observe, p.Mode())
	d := decide(t, p, svc, drop)
	assert.Equal(t, Deny, d.Effect, "the effect that would have happened")
	assert.True(t, d.Observed)
	assert.False(t, d.Blocks())

	q, err := Parse([]byte(strings.Replace(src, "mode: observe\n", "", 1)))
	require.NoError(t, err)
	assert.True(t, decide(t, q, svc, drop).Blocks())
	o, err := Parse([]byte(strings.Replace(src, "mode: observe\n", "", 1)), ObserveOnly())
	require.NoError(t, err)
	assert.False(t, decide(t, o, svc, drop).Blocks())
	assert.True(t, decide(t, o, svc, drop).Observed)
	assert.True(t, decide(t, Baseline().WithMode(Observe), agent, ins).Observed)
	assert.False(t, decide(t, Baseline().WithMode(Observe), agent, ins).NeedsApproval())
}

func TestExtendsBaseline(t *testing.T) {
	src := `
name: team
extends: baseline
disable: [deny-truncate]
rules:
  - name: deny-drop
    match: stmt.command.startsWith('DROP') && !stmt.writes.all(w, w.startsWith('scratch.'))
    effect: deny
    message: only scratch tables may be dropped
  - name: no-agents-on-payroll
    match: identity.kind == 'agent' && stmt.tables.exists(t, t.startsWith('payroll.'))
    effect: deny
`
	p, err := Parse([]byte(src))
	require.NoError(t, err)
	// Inherited rule still there.
	assert.Equal(t, "deny-unbounded-write", decide(t, p, svc, updAll).Rule)
	// Disabled rule gone.
	assert.Equal(t, Allow, decide(t, p, svc, trunc).Effect)
	// Same-name override replaces the baseline rule.
	scratch := drop
	scratch.Writes = []sqlinfo.Relation{rel("scratch.tmp")}
	assert.Equal(t, Allow, decide(t, p, svc, scratch).Effect)
	d := decide(t, p, svc, drop)
	assert.Equal(t, "deny-drop", d.Rule)
	assert.Equal(t, "only scratch tables may be dropped", d.Message)
	// New rule.
	pay := sel
	pay.Reads = []sqlinfo.Relation{rel("payroll.salaries")}
	assert.Equal(t, "no-agents-on-payroll", decide(t, p, agent, pay).Rule)
	assert.Len(t, p.Rules(), len(Baseline().Rules())-1+1)
}

func TestMalformedPolicies(t *testing.T) {
	cases := []struct {
		name, src string
		line      int
		rule      string
		want      string
		is        error
	}{
		{"bad yaml", "name: x\nrules:\n  - name: a\n   match: true\n", 4, "", "", nil},
		{"unknown top field", "name: x\nrulez: []\n", 2, "", "unknown field \"rulez\"", nil},
		{"unknown rule field", "name: x\nrules:\n  - name: a\n    match: 'true'\n    effect: deny\n    mesage: hi\n", 6, "", "unknown field \"mesage\"", nil},
		{"unknown test field", "name: x\ntests:\n  - sql: SELECT 1\n    expect: allow\n    expct: deny\n", 5, "", "unknown field \"expct\"", nil},
		{"misspelled fact", "name: x\nrules:\n  - name: a\n    match: stmt.has_wher\n    effect: deny\n", 4, "a", "undefined field 'has_wher'", nil},
		{"type error", "name: x\nrules:\n  - name: a\n    match: stmt.limit == 'ten'\n    effect: deny\n", 4, "a", "no matching overload", nil},
		{"undeclared variable", "name: x\nrules:\n  - name: a\n    match: user.kind == 'agent'\n    effect: deny\n", 4, "a", "undeclared reference to 'user'", nil},
		{"non-bool match", "name: x\nrules:\n  - name: a\n    match: stmt.command\n    effect: deny\n", 4, "a", "must be bool, is string", ErrType},
		{"non-string message_expr", "name: x\nrules:\n  - name: a\n    match: 'true'\n    effect: deny\n    message_expr: stmt.limit\n", 6, "a", "must be string", ErrType},
		{"too costly", "name: x\nrules:\n  - name: slow\n    match: stmt.tables.all(a, stmt.tables.all(b, stmt.tables.all(c, a + b + c != '')))\n    effect: deny\n", 4, "slow", "exceeds", ErrTooCostly},
		{"bad effect", "name: x\nrules:\n  - name: a\n    match: 'true'\n    effect: block\n", 5, "a", "effect \"block\"", nil},
		{"bad mode", "name: x\nmode: loud\n", 2, "", "mode \"loud\"", nil},
		{"bad default", "name: x\ndefault: maybe\n", 2, "", "default \"maybe\"", nil},
		{"duplicate rule", "name: x\nrules:\n  - {name: a, match: 'true', effect: deny}\n  - {name: a, match: 'false', effect: deny}\n", 4, "a", "duplicate", nil},
		{"disable unknown", "name: x\nextends: baseline\ndisable: [deny-dorp]\n", 3, "", "no rule \"deny-dorp\"", nil},
		{"extends other", "name: x\nextends: strict\n", 2, "", "only \"baseline\"", nil},
		{"match as a list", "name: x\nrules:\n  - name: a\n    match: [1]\n    effect: deny\n", 4, "", "expected a string", nil},
		{"empty match", "name: x\nrules:\n  - name: a\n    effect: deny\n", 3, "a", "match is empty", nil},
		{"unknown masking field", "name: x\nmasking:\n  disabled: true\n  colums: []\n", 4, "", "unknown field \"colums\"", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseFile("team.yaml", []byte(c.src))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrInvalid)
			var pe *Error
			require.True(t, errors.As(err, &pe), "%T %v", err, err)
			assert.Equal(t, c.line, pe.Line, "%v", err)
			assert.Equal(t, c.rule, pe.Rule, "%v", err)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, strings.HasPrefix(err.Error(), "team.yaml:"), err.Error())
			if c.rule != "" {
				assert.Contains(t, err.Error(), `rule "`+c.rule+`"`)
			}
			if c.is != nil {
				assert.ErrorIs(t, err, c.is)
			}
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestVersionIsContentHash(t *testing.T) {
	a, err := Parse([]byte("name: a\n"))
	require.NoError(t, err)
	b, err := Parse([]byte("name: a\n# changed\n"))
	require.NoError(t, err)
	assert.NotEqual(t, a.Version(), b.Version())
	assert.True(t, strings.HasPrefix(a.Version(), "a@"))
	a2, err := Parse([]byte("name: a\n"))
	require.NoError(t, err)
	assert.Equal(t, a.Version(), a2.Version())
	// Deployment labels change decisions, so they change the version.
	prod, err := Parse([]byte("name: a\n"), WithEnv(map[string]string{"env": "production"}))
	require.NoError(t, err)
	assert.NotEqual(t, a.Version(), prod.Version())
	ext, err := Parse([]byte("name: a\nextends: baseline\n"))
	require.NoError(t, err)
	assert.NotEqual(t, a.Version(), ext.Version())
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(t.TempDir() + "/nope.yaml")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrInvalid)
}

func TestRuntimeCostLimit(t *testing.T) {
	// The estimate assumes at most 1000 functions; a statement with far more
	// still cannot make the evaluation run away.
	src := "name: x\nrules:\n  - name: heavy\n    match: stmt.functions.exists(f, f + f == 'zz')\n    effect: allow\n"
	p, err := Parse([]byte(src))
	require.NoError(t, err)
	fns := make([]string, 500_000)
	for i := range fns {
		fns[i] = "f"
	}
	d := decide(t, p, svc, sqlinfo.Statement{Command: "SELECT", Effect: sqlinfo.Read, Functions: fns})
	assert.Equal(t, Deny, d.Effect)
	assert.Equal(t, "heavy", d.Rule)
	assert.Contains(t, d.Message, "cost limit")

	// A large input with a cheap rule is evaluated normally.
	q, err := Parse([]byte("name: x\nrules:\n  - name: cheap\n    match: \"'lo_export' in stmt.functions\"\n    effect: deny\n"))
	require.NoError(t, err)
	fns[len(fns)-1] = "lo_export"
	d = decide(t, q, svc, sqlinfo.Statement{Command: "SELECT", Effect: sqlinfo.Read, Functions: fns[len(fns)-100_000:]})
	assert.Equal(t, Deny, d.Effect)
	assert.Equal(t, "cheap", d.Rule)
	assert.Equal(t, "rule cheap", d.Message)
}

// TestPrefilterAgreesWithFullEvaluation checks the statement-part prefilter
// against evaluating every rule in full, over identities x statements.
func TestPrefilterAgreesWithFullEvaluation(t *testing.T) {
	p, err := Parse([]byte(semantics + `
  - name: mixed-or
    match: identity.kind == 'service' || stmt.command == 'TRUNCATE TABLE'
    effect: audit
  - name: nested
    match: (stmt.effect == 'ddl' && 'admin' in identity.roles) && !request.in_transaction
    effect: allow
  - name: caller-in-comprehension
    match: stmt.effect == 'read' && stmt.tables.exists(t, t.startsWith(identity.subject))
    effect: require_approval
  - name: shadowing
    match: stmt.tables.exists(identity, identity == 'orders') && stmt.command == 'SELECT'
    effect: audit
`))
	require.NoError(t, err)
	ids := []identity.Identity{svc, human, agent, identity.Anonymous(), {Subject: "root", Kind: identity.Human, Roles: []string{"admin"}}, {Subject: "crm", Kind: identity.Agent}}
	stmts := []sqlinfo.Statement{sel, selPII, ins, upd, updAll, delTrue, drop, trunc, alterDel, alterAdd, grant, setRole, copyProg, doBlock, garbage, cteWrite,
		{Text: "DELETE", Command: "DELETE", Effect: sqlinfo.Write, HasWhere: true}}
	for _, b := range []*Policy{p, Baseline(), twentyRules(t)} {
		for _, id := range ids {
			for i, st := range stmts {
				a := facts(st, stmts[(i+3)%len(stmts)])
				for range 2 { // second round hits the cache
					in := &Input{Identity: id, Analysis: a}
					got := b.Decide(context.Background(), in)
					want := b.Explain(context.Background(), in).Decision
					require.Equal(t, want, got, "%s %s: %s", b.Name(), id, st.Text)
				}
			}
		}
	}
}

func TestMalformedTestCases(t *testing.T) {
	cases := []struct{ src, want string }{
		{"tests:\n  - sql: SELECT 1\n    expect: maybe\n", `test "SELECT 1": expect "maybe"`},
		{"tests:\n  - sql: SELECT 1\n    expect: deny\n    rule: no-such-rule\n", `expects rule "no-such-rule"`},
		{"tests:\n  - name: empty\n    expect: deny\n", `test "empty": sql is empty`},
		{"tests:\n  - sql: SELECT 1\n    expect: deny\n    identity: {subject: x, kind: robot}\n", `identity kind "robot"`},
		{"tests:\n  - sql: SELECT 1\n    expect: deny\n    request: {kind: stream}\n", `request kind "stream"`},
		{"tests:\n  - sql: SELECT 1\n    expect: deny\n    dialect: oracle\n", `dialect "oracle"`},
	}
	for _, c := range cases {
		_, err := ParseFile("t.yaml", []byte("name: x\n"+c.src))
		require.Error(t, err, c.src)
		assert.ErrorIs(t, err, ErrInvalid)
		assert.Contains(t, err.Error(), "t.yaml:3: ")
		assert.Contains(t, err.Error(), c.want)
	}
	// Nil input does not panic; with nothing known, the baseline denies.
	assert.Equal(t, Deny, Baseline().Decide(context.Background(), nil).Effect)
}
