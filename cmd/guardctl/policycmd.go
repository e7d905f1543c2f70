package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/guardedsql/guard/policy"
)

const policyUsage = `usage:
  guardctl policy lint FILE
  guardctl policy test [-v] FILE
  guardctl policy explain FILE --as SUBJECT[:kind] [--role R]... [--for SUBJECT[:kind]]
                          [--kind query|exec|prepare] [--tx] [--env k=v]... [--dialect postgres|mysql]
                          --sql "..."

FILE "baseline" means the built-in baseline policy when no such file exists.
Exit status: 0 ok, 1 invalid policy or failing tests, 2 usage error.
`

// runPolicy implements `guardctl policy`.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "lint":
		return policyLint(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "guardctl policy: unknown command %q\n%s", args[0], policyUsage)
	return 2
}

// loadPolicy loads file, or the baseline when file is "baseline" and no
// such file exists.
func loadPolicy(file string) (*policy.Policy, error) {
	if file == "baseline" {
		if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
			return policy.Baseline(), nil
		}
	}
	return policy.Load(file)
}

// splitFile takes the FILE argument wherever it appears among the flags.
func parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if file == "" && len(rest) > 0 {
		file, rest = rest[0], rest[1:]
	}
	if file == "" {
		return "", errors.New("missing FILE")
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " "))
	}
	return file, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("guardctl policy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	return fs
}

func policyLint(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("lint", stderr)
	file, err := parseWithFile(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl policy lint: %v\n", err)
		return 2
	}
	p, err := loadPolicy(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok: %s, %d rules, %d tests, mode %s, default %s\n",
		file, p.Version(), len(p.Rules()), len(p.Tests()), p.Mode(), p.Default())
	return 0
}

func policyTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("test", stderr)
	verbose := fs.Bool("v", false, "print passing cases too")
	file, err := parseWithFile(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl policy test: %v\n", err)
		return 2
	}
	p, err := loadPolicy(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	results := p.RunTests(context.Background())
	failed := 0
	for _, r := range results {
		where := file
		if l := r.Case.Line(); l > 0 {
			where = fmt.Sprintf("%s:%d", file, l)
		}
		if r.Passed() {
			if *verbose {
				fmt.Fprintf(stdout, "ok   %s: %s -> %s %s\n", where, r.Case.Name, r.Got.Effect, r.Got.Rule)
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s: %s: %s\n", where, r.Case.Name, r.Failure)
		fmt.Fprintf(stdout, "     sql:      %s\n", r.Case.SQL)
		if id, err := r.Case.Identity.Identity(); err == nil {
			fmt.Fprintf(stdout, "     identity: %s\n", id)
		}
		fmt.Fprintf(stdout, "     decision: %s by %q: %s\n", r.Got.Effect, r.Got.Rule, r.Got.Message)
		for i, f := range policy.Facts(r.Analysis) {
			printFacts(stdout, "     ", i, f)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "FAIL %s: %d of %d cases failed\n", file, failed, len(results))
		return 1
	}
	fmt.Fprintf(stdout, "ok   %s: %d cases passed\n", file, len(results))
	return 0
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

// subjectKind splits "copilot-7:agent".
func subjectKind(s string) policy.TestIdentity {
	id := policy.TestIdentity{Subject: s}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		switch k := s[i+1:]; k {
		case "human", "agent", "service":
			id.Subject, id.Kind = s[:i], k
		}
	}
	return id
}

func policyExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", stderr)
	as := fs.String("as", "", "the caller, SUBJECT[:human|agent|service]")
	forWhom := fs.String("for", "", "whom the caller acts for, SUBJECT[:kind]")
	var roles, envs multi
	fs.Var(&roles, "role", "a role of the caller (repeatable)")
	fs.Var(&envs, "env", "an environment label k=v (repeatable)")
	sqlText := fs.String("sql", "", "the statement string")
	kind := fs.String("kind", "exec", "request kind: query, exec or prepare")
	tx := fs.Bool("tx", false, "the statement runs in a transaction")
	dialect := fs.String("dialect", "", "postgres or mysql (default: the policy's)")
	file, err := parseWithFile(fs, args)
	if err == nil && *sqlText == "" {
		err = errors.New("--sql is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "guardctl policy explain: %v\n", err)
		return 2
	}
	p, err := loadPolicy(file)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	tc := policy.TestCase{SQL: *sqlText, Dialect: *dialect, Request: policy.TestRequest{Kind: *kind, InTransaction: *tx}}
	if *as != "" {
		tc.Identity = subjectKind(*as)
	}
	tc.Identity.Roles = roles
	if *forWhom != "" {
		o := subjectKind(*forWhom)
		tc.Identity.OnBehalfOf = &o
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(stderr, "guardctl policy explain: --env %q: want k=v\n", kv)
			return 2
		}
		if tc.Env == nil {
			tc.Env = map[string]string{}
		}
		tc.Env[k] = v
	}
	ex, err := p.ExplainCase(context.Background(), tc)
	if err != nil {
		fmt.Fprintf(stderr, "guardctl policy explain: %v\n", err)
		return 2
	}
	id := ex.Identity
	fmt.Fprintf(stdout, "policy:   %s (%s), mode %s, default %s\n", p.Version(), p.File(), p.Mode(), p.Default())
	fmt.Fprintf(stdout, "identity: %s kind=%q roles=%v", id.Subject, id.Kind, id.Roles)
	if id.Delegated {
		fmt.Fprintf(stdout, " on_behalf_of=%s kind=%q", id.OnBehalfOf.Subject, id.OnBehalfOf.Kind)
	}
	fmt.Fprintln(stdout)
	for i, f := range ex.Statements {
		printFacts(stdout, "", i, f)
	}
	if len(ex.Matches) == 0 {
		fmt.Fprintln(stdout, "matching rules: none")
	} else {
		fmt.Fprintln(stdout, "matching rules:")
		for _, m := range ex.Matches {
			eff := string(m.Rule.Effect)
			if m.Err != nil {
				eff = "error"
			}
			fmt.Fprintf(stdout, "  %-16s %s (%s:%d) on statement %d: %s\n", eff, m.Rule.Name, m.Rule.File, m.Rule.Line, m.Statement+1, m.Message)
		}
	}
	d := ex.Decision
	by := "default"
	if d.Rule != "" {
		by = "rule " + d.Rule
	}
	obs := ""
	if d.Observed {
		obs = " (observe mode: not enforced)"
	}
	fmt.Fprintf(stdout, "decision: %s by %s: %s%s\n", d.Effect, by, d.Message, obs)
	return 0
}

// printFacts prints one statement's facts as rules see them.
func printFacts(w io.Writer, indent string, i int, f *policy.StatementVars) {
	fmt.Fprintf(w, "%sstatement %d: %s\n", indent, i+1, f.Text)
	fmt.Fprintf(w, "%s  command=%q effect=%s has_where=%t where_always_true=%t limit=%d\n",
		indent, f.Command, f.Effect, f.HasWhere, f.WhereAlwaysTrue, f.Limit)
	fmt.Fprintf(w, "%s  reads=%v writes=%v functions=%v dangers=%v\n", indent, f.Reads, f.Writes, f.Functions, f.Dangers)
	for _, c := range f.Columns {
		fmt.Fprintf(w, "%s  column %q <- %v\n", indent, c.Name, c.Sources)
	}
	if f.Error != "" {
		fmt.Fprintf(w, "%s  error: %s\n", indent, f.Error)
	}
}
