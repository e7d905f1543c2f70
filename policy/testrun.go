package policy

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
)

// TestResult is the outcome of one test case.
type TestResult struct {
	Case TestCase
	// Got is the decision the policy made.
	Got Decision
	// Analysis is what the analyzer found in the case's SQL.
	Analysis *sqlinfo.Analysis
	// Failure says what did not match; empty when the case passed.
	Failure string
}

// Passed reports whether the case passed.
func (r TestResult) Passed() bool { return r.Failure == "" }

// RunTests runs the policy file's test cases through the real analyzer and
// Decide, in enforce mode, and returns one result per case.
func (p *Policy) RunTests(ctx context.Context) []TestResult {
	out := make([]TestResult, 0, len(p.tests))
	for _, tc := range p.tests {
		out = append(out, p.RunTest(ctx, tc))
	}
	return out
}

// RunTest runs one test case against p.
func (p *Policy) RunTest(ctx context.Context, tc TestCase) TestResult {
	r := TestResult{Case: tc}
	if tc.Name == "" {
		r.Case.Name = tc.SQL
	}
	want, ok := parseEffect(string(tc.Expect))
	if !ok {
		r.Failure = fmt.Sprintf("expect %q: want allow, audit, require_approval or deny", tc.Expect)
		return r
	}
	in, q, err := p.caseInput(tc)
	if err != nil {
		r.Failure = err.Error()
		return r
	}
	r.Analysis = in.Analysis
	r.Got = q.WithMode(Enforce).Decide(ctx, in)
	var fails []string
	if r.Got.Effect != want {
		fails = append(fails, fmt.Sprintf("effect %s, want %s", r.Got.Effect, want))
	}
	if tc.Rule != "" && r.Got.Rule != tc.Rule {
		fails = append(fails, fmt.Sprintf("rule %q, want %q", r.Got.Rule, tc.Rule))
	}
	r.Failure = strings.Join(fails, "; ")
	return r
}

// caseInput builds the decision input for a test case, and the policy to
// decide with (p itself, or a copy with the case's env labels).
func (p *Policy) caseInput(tc TestCase) (*Input, *Policy, error) {
	d, kind, id, err := p.checkCase(tc)
	if err != nil {
		return nil, nil, err
	}
	in := &Input{
		Identity: id,
		Analysis: sqlinfo.Analyze(d, tc.SQL),
		Request:  Request{Kind: kind, InTransaction: tc.Request.InTransaction, Database: tc.Request.Database, Driver: tc.Request.Driver},
	}
	q := p
	if len(tc.Env) > 0 {
		c := *p
		c.env = maps.Clone(p.env)
		maps.Copy(c.env, tc.Env)
		c.envVal = c.env
		c.cache = newStaticCache()
		q = &c
	}
	return in, q, nil
}

// checkCase validates a case's dialect, request kind and identity.
func (p *Policy) checkCase(tc TestCase) (sqlinfo.Dialect, RequestKind, identity.Identity, error) {
	d := p.dialect
	if tc.Dialect != "" {
		d = sqlinfo.Dialect(tc.Dialect)
		if d != sqlinfo.Postgres && d != sqlinfo.MySQL {
			return "", "", identity.Identity{}, fmt.Errorf("dialect %q: want postgres or mysql", tc.Dialect)
		}
	}
	kind := RequestKind(tc.Request.Kind)
	switch kind {
	case "":
		kind = KindExec
	case KindQuery, KindExec, KindPrepare:
	default:
		return "", "", identity.Identity{}, fmt.Errorf("request kind %q: want query, exec or prepare", tc.Request.Kind)
	}
	id, err := tc.Identity.identity(0)
	return d, kind, id, err
}

// Identity converts a test identity to an identity.Identity.
func (t TestIdentity) Identity() (identity.Identity, error) { return t.identity(0) }

func (t TestIdentity) identity(depth int) (identity.Identity, error) {
	if depth > 16 {
		return identity.Identity{}, fmt.Errorf("on_behalf_of nested too deeply")
	}
	id := identity.Identity{Subject: t.Subject, Kind: identity.Kind(t.Kind), Roles: t.Roles, Session: t.Session, Attributes: t.Attributes}
	if id.Subject == "" {
		id.Subject = identity.AnonymousSubject
	}
	if id.Kind != "" && !id.Kind.Valid() {
		return id, fmt.Errorf("identity kind %q: want human, agent or service", t.Kind)
	}
	if t.OnBehalfOf != nil {
		o, err := t.OnBehalfOf.identity(depth + 1)
		if err != nil {
			return id, err
		}
		id.OnBehalfOf = &o
	}
	return id, nil
}

// ExplainCase analyzes tc's SQL and explains the decision for it, with every
// rule that matched: what `guardctl policy explain` prints. Expect and Rule
// are ignored.
func (p *Policy) ExplainCase(ctx context.Context, tc TestCase) (Explanation, error) {
	in, q, err := p.caseInput(tc)
	if err != nil {
		return Explanation{}, err
	}
	return q.Explain(ctx, in), nil
}

// Facts returns the CEL `stmt` value of each statement of a, as rules see them.
func Facts(a *sqlinfo.Analysis) []*StatementVars {
	if a == nil || len(a.Statements) == 0 {
		a = unknownAnalysis("no analysis")
	}
	out := make([]*StatementVars, len(a.Statements))
	for i := range a.Statements {
		out[i] = statementVars(a, i)
	}
	return out
}
