// Package policy decides, for every statement, what the guard does with it:
// allow, audit, require_approval or deny.
//
// A policy is a YAML file of rules whose `match` is a CEL expression over the
// caller (`identity`), the statement's analysis facts (`stmt`), how it is run
// (`request`), the environment labels (`env`) and the time (`now`). Every
// expression is compiled, type-checked and cost-checked when the file is
// loaded, so a misspelled field or a runaway expression fails at load with
// file:line, never at query time.
//
//	version: 1
//	name: shop
//	extends: baseline          # keep the built-in safety rules
//	env: {env: production}
//	rules:
//	  - name: no-agents-on-payroll
//	    match: identity.kind == 'agent' && stmt.tables.exists(t, t.startsWith('payroll.'))
//	    effect: deny
//	    message_expr: "'agents may not touch ' + stmt.tables[0]"
//	tests:
//	  - {identity: {subject: copilot-7, kind: agent}, sql: "SELECT * FROM payroll.salaries", expect: deny}
//
// Every matching rule counts and the most restrictive effect wins (deny over
// require_approval over audit over allow); a rule that fails to evaluate
// denies; a string of several statements gets the most restrictive decision
// of its statements; no match gives the file's default (allow).
//
// Load or Parse compile a file; Baseline is the built-in policy used when
// none is configured. A Store holds the policy of a running guard and swaps
// it atomically on Reload or when Watch sees the file change; both *Policy and
// *Store are a Decider:
//
//	store, err := policy.NewStore("/etc/guard/policy.yaml")
//	if err != nil { ... }                  // *policy.Error: "policy.yaml:12:12: rule "x": ..."
//	_ = store.Watch(ctx, func(err error) { log.Print(err) })  // bad edits keep the old policy
//	d := store.Decide(ctx, &policy.Input{Identity: id, Analysis: facts})
//
// See docs/policy.md for the file format, the CEL variables and the baseline.
package policy
