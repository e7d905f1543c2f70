package policy_test

import (
	"context"
	"fmt"

	"github.com/guardedsql/guard/identity"
	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/policy"
)

func Example() {
	p, err := policy.Parse([]byte(`
name: shop
extends: baseline
rules:
  - name: no-agents-on-payroll
    match: identity.kind == 'agent' && stmt.tables.exists(t, t.startsWith('payroll.'))
    effect: deny
    message_expr: "'agents may not touch ' + stmt.tables[0]"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The guard passes the analyzer's facts; here they are written by hand.
	facts := &sqlinfo.Analysis{Dialect: sqlinfo.Postgres, Statements: []sqlinfo.Statement{{
		Text: "SELECT * FROM payroll.salaries", Command: "SELECT", Effect: sqlinfo.Read,
		Reads: []sqlinfo.Relation{{Schema: "payroll", Name: "salaries"}}, Limit: -1,
	}}}
	agent := identity.Identity{Subject: "copilot-7", Kind: identity.Agent}
	d := p.Decide(context.Background(), &policy.Input{Identity: agent, Analysis: facts})
	fmt.Println(d.Effect, d.Rule, d.Message)

	_, err = policy.ParseFile("shop.yaml", []byte("rules:\n  - name: typo\n    match: stmt.has_wher\n    effect: deny\n"))
	fmt.Println(err)
	// Output:
	// deny no-agents-on-payroll agents may not touch payroll.salaries
	// shop.yaml:3:12: rule "typo": match: 1:5: undefined field 'has_wher'
}
