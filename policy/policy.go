package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/guardedsql/guard/internal/sqlinfo"
	"github.com/guardedsql/guard/mask"
)

// Decider decides what happens to a statement. *Policy and *Store implement
// it; the guard calls Decide once per statement attempt.
type Decider interface {
	Decide(ctx context.Context, in *Input) Decision
}

// Rule is one compiled rule.
type Rule struct {
	// Name identifies the rule in decisions, audit records and overrides.
	Name string
	// Description is free text for people.
	Description string
	// Match is the CEL condition source.
	Match string
	// Effect is what the rule does when Match is true.
	Effect Effect
	// Message is the static message; MessageExpr, when set, computes it.
	Message     string
	MessageExpr string
	// File and Line say where the rule was written ("baseline" for built-in rules).
	File string
	Line int

	match   program
	message *program
	// static is the part of match that reads only stmt and env; allStatic
	// says it is the whole of match.
	static    *program
	allStatic bool
}

// Policy is a compiled policy file. It is immutable and safe for concurrent use.
type Policy struct {
	name     string
	file     string
	version  string
	mode     Mode
	def      Effect
	dialect  sqlinfo.Dialect
	env      map[string]string
	envVal   map[string]string
	rules    []*Rule // in file order
	ordered  []*Rule // most restrictive effect first, file order within an effect
	masking  *mask.Config
	tests    []TestCase
	extended string
	cache    *staticCache
}

// Option adjusts a policy as it is loaded.
type Option func(*options)

type options struct {
	observe bool
	env     map[string]string
}

// ObserveOnly puts the policy in observe mode whatever its file says.
func ObserveOnly() Option { return func(o *options) { o.observe = true } }

// WithEnv adds or overrides environment labels (the CEL `env` map), e.g. the
// deployment sets {"env": "production"} while the file stays the same.
func WithEnv(labels map[string]string) Option {
	return func(o *options) {
		if o.env == nil {
			o.env = map[string]string{}
		}
		maps.Copy(o.env, labels)
	}
}

// Load reads and compiles the policy file at path.
func Load(path string, opts ...Option) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return ParseFile(path, data, opts...)
}

// Parse compiles a policy from YAML; errors name the file "<policy>".
func Parse(data []byte, opts ...Option) (*Policy, error) {
	return ParseFile("<policy>", data, opts...)
}

// ParseFile compiles a policy from YAML, naming errors after file.
func ParseFile(file string, data []byte, opts ...Option) (*Policy, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	doc, err := decodeFile(file, data)
	if err != nil {
		return nil, err
	}
	// The version covers everything that changes decisions: the file, the
	// baseline it extends (which changes with guard releases) and labels
	// set by the deployment.
	hashed := data
	if len(o.env) > 0 {
		keys := slices.Sorted(maps.Keys(o.env))
		hashed = slices.Clone(data)
		for _, k := range keys {
			hashed = fmt.Appendf(hashed, "\x00env:%s=%s", k, o.env[k])
		}
	}
	p, err := compile(file, doc, hashed)
	if err != nil {
		return nil, err
	}
	if o.observe {
		p.mode = Observe
	}
	if len(o.env) > 0 {
		env := maps.Clone(p.env)
		if env == nil {
			env = map[string]string{}
		}
		maps.Copy(env, o.env)
		p.env = env
		p.envVal = env
	}
	p.cache = newStaticCache()
	return p, nil
}

func compile(file string, doc *fileDoc, data []byte) (*Policy, error) {
	errAt := func(at pos, rule, format string, args ...any) error {
		return &Error{File: file, Line: at.Line, Column: at.Column, Rule: rule, Msg: fmt.Sprintf(format, args...)}
	}
	if doc.Version != 0 && doc.Version != 1 {
		return nil, &Error{File: file, Line: 1, Msg: fmt.Sprintf("version %d is not supported (use 1)", doc.Version)}
	}
	p := &Policy{name: doc.Name.Value, file: file, mode: Enforce, def: Allow, dialect: sqlinfo.Postgres, env: doc.Env, masking: doc.Masking, tests: doc.Tests}
	if p.name == "" {
		p.name = "policy"
	}
	switch Mode(doc.Mode.Value) {
	case "", Enforce:
	case Observe:
		p.mode = Observe
	default:
		return nil, errAt(doc.Mode, "", "mode %q: want enforce or observe", doc.Mode.Value)
	}
	if doc.Default.set {
		e, ok := parseEffect(doc.Default.Value)
		if !ok {
			return nil, errAt(doc.Default, "", "default %q: want allow, audit, require_approval or deny", doc.Default.Value)
		}
		p.def = e
	}
	if doc.Dialect.set {
		switch sqlinfo.Dialect(doc.Dialect.Value) {
		case sqlinfo.Postgres, sqlinfo.MySQL:
			p.dialect = sqlinfo.Dialect(doc.Dialect.Value)
		default:
			return nil, errAt(doc.Dialect, "", "dialect %q: want postgres or mysql", doc.Dialect.Value)
		}
	}

	// Inherited rules come first; a rule of the same name replaces the
	// inherited one in place, so its position (and documentation) stays.
	var rules []*Rule
	if doc.Extends.set {
		if doc.Extends.Value != "baseline" {
			return nil, errAt(doc.Extends, "", "extends %q: only \"baseline\" can be extended", doc.Extends.Value)
		}
		p.extended = "baseline"
		base := Baseline()
		disabled := map[string]bool{}
		for _, d := range doc.Disable {
			if base.rule(d.Value) == nil {
				return nil, errAt(d, "", "disable: baseline has no rule %q", d.Value)
			}
			disabled[d.Value] = true
		}
		if !doc.Default.set {
			p.def = base.def
		}
		for _, r := range base.rules {
			if !disabled[r.Name] {
				rules = append(rules, r)
			}
		}
	} else if len(doc.Disable) > 0 {
		return nil, errAt(doc.Disable[0], "", "disable needs extends: baseline")
	}

	seen := map[string]bool{}
	for i := range doc.Rules {
		rd := &doc.Rules[i]
		r, err := compileRule(file, rd)
		if err != nil {
			return nil, err
		}
		if seen[r.Name] {
			return nil, errAt(rd.Name, r.Name, "duplicate rule name")
		}
		seen[r.Name] = true
		if j := slices.IndexFunc(rules, func(x *Rule) bool { return x.Name == r.Name }); j >= 0 {
			rules[j] = r
		} else {
			rules = append(rules, r)
		}
	}
	p.rules = rules
	p.ordered = slices.Clone(rules)
	sort.SliceStable(p.ordered, func(i, j int) bool { return p.ordered[i].Effect.Rank() > p.ordered[j].Effect.Rank() })
	if p.env == nil {
		p.env = map[string]string{}
	}
	p.envVal = p.env

	if p.extended != "" {
		data = fmt.Appendf(slices.Clone(data), "\x00extends:%s", Baseline().version)
	}
	sum := sha256.Sum256(data)
	p.version = p.name + "@" + hex.EncodeToString(sum[:6])
	if err := p.checkTests(); err != nil {
		return nil, err
	}
	return p, nil
}

// checkTests rejects test cases that could never pass, at load, with their line.
func (p *Policy) checkTests() error {
	for i := range p.tests {
		tc := &p.tests[i]
		fail := func(format string, args ...any) error {
			return &Error{File: p.file, Line: tc.line, Msg: "test " + strconvQuote(tc.Name, tc.SQL) + ": " + fmt.Sprintf(format, args...)}
		}
		if _, ok := parseEffect(string(tc.Expect)); !ok {
			return fail("expect %q: want allow, audit, require_approval or deny", tc.Expect)
		}
		if tc.Rule != "" && p.rule(tc.Rule) == nil {
			return fail("expects rule %q, which the policy does not have", tc.Rule)
		}
		if strings.TrimSpace(tc.SQL) == "" {
			return fail("sql is empty")
		}
		if _, _, _, err := p.checkCase(*tc); err != nil {
			return fail("%v", err)
		}
	}
	return nil
}

func strconvQuote(name, sql string) string {
	if name == "" {
		name = sql
	}
	return fmt.Sprintf("%q", name)
}

func parseEffect(s string) (Effect, bool) {
	switch e := Effect(s); e {
	case Allow, Audit, RequireApproval, Deny:
		return e, true
	}
	return "", false
}

func compileRule(file string, rd *ruleDoc) (*Rule, error) {
	name := rd.Name.Value
	line := rd.Name.Line
	if line == 0 {
		line = rd.Match.Line
	}
	fail := func(at pos, err error, format string, args ...any) error {
		l, c := at.Line, at.Column
		if l == 0 {
			l = line
		}
		return &Error{File: file, Line: l, Column: c, Rule: name, Msg: fmt.Sprintf(format, args...), Err: err}
	}
	if name == "" {
		return nil, &Error{File: file, Line: rd.Match.Line, Msg: "rule without a name"}
	}
	r := &Rule{Name: name, Description: rd.Description.Value, Match: rd.Match.Value, Message: rd.Message.Value, MessageExpr: rd.MessageExpr.Value, File: file, Line: line}
	e, ok := parseEffect(rd.Effect.Value)
	if !ok {
		return nil, fail(rd.Effect, nil, "effect %q: want allow, audit, require_approval or deny", rd.Effect.Value)
	}
	r.Effect = e
	if strings.TrimSpace(r.Match) == "" {
		return nil, fail(rd.Name, nil, "match is empty")
	}
	if rd.Message.set && rd.MessageExpr.set {
		return nil, fail(rd.MessageExpr, nil, "set message or message_expr, not both")
	}
	checked, prg, err := compileChecked(r.Match, types.BoolType)
	if err != nil {
		return nil, fail(rd.Match, err, "match: %v", err)
	}
	r.match = prg
	if r.static, r.allStatic, err = staticPart(checked); err != nil {
		return nil, fail(rd.Match, err, "match: %v", err)
	}
	if r.MessageExpr != "" {
		prg, err := compileExpr(r.MessageExpr, types.StringType)
		if err != nil {
			return nil, fail(rd.MessageExpr, err, "message_expr: %v", err)
		}
		r.message = &prg
	}
	return r, nil
}

// ErrTooCostly is matched by errors about expressions whose estimated
// worst-case cost exceeds MaxEstimatedCost.
var ErrTooCostly = errors.New("expression too costly")

// ErrType is matched by errors about expressions of the wrong result type.
var ErrType = errors.New("expression has the wrong type")

// program is one compiled expression in two builds. The load-time estimate
// bounds the cost of every evaluation whose inputs are within the sizes it
// assumed; those run the fast build. Larger inputs (a 10,000-item IN list, a
// megabyte of statement text) run the build with the runtime cost limit,
// which stops an evaluation that would run away. Cost tracking roughly
// doubles the price of an evaluation, so it is only paid when needed.
type program struct {
	fast, limited cel.Program
}

func (p *program) eval(act *activation) (ref.Val, error) {
	prg := p.limited
	if act.bounded {
		prg = p.fast
	}
	out, _, err := prg.Eval(act)
	return out, err
}

func compileExpr(src string, want *types.Type) (program, error) {
	_, prg, err := compileChecked(src, want)
	return prg, err
}

func compileChecked(src string, want *types.Type) (*cel.Ast, program, error) {
	ast, iss := celEnv.Compile(src)
	if iss.Err() != nil {
		return nil, program{}, errors.New(oneLine(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(want) {
		return nil, program{}, fmt.Errorf("%w: must be %s, is %s", ErrType, want, ast.OutputType())
	}
	est, err := celEnv.EstimateCost(ast, sizeEstimator{})
	if err != nil {
		return nil, program{}, err
	}
	if est.Max > MaxEstimatedCost {
		return nil, program{}, fmt.Errorf("%w: estimated worst-case cost %d exceeds %d", ErrTooCostly, est.Max, MaxEstimatedCost)
	}
	var prg program
	if prg.fast, err = celEnv.Program(ast, cel.EvalOptions(cel.OptOptimize)); err != nil {
		return nil, program{}, err
	}
	if prg.limited, err = celEnv.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(MaxRuntimeCost)); err != nil {
		return nil, program{}, err
	}
	return ast, prg, nil
}

// oneLine keeps the first line of a CEL error and drops its source excerpt;
// the file:line in front already says where.
func oneLine(s string) string {
	s = strings.TrimPrefix(s, "ERROR: ")
	s = strings.TrimPrefix(s, "<input>:")
	if i := strings.IndexByte(s, '\n'); i > 0 {
		s = s[:i]
	}
	return s
}

// Name returns the policy's name.
func (p *Policy) Name() string { return p.name }

// File returns the file the policy was read from ("<policy>", "baseline").
func (p *Policy) File() string { return p.file }

// Version identifies this exact policy content: "name@hash". Every decision
// carries it in Decision.Policy.
func (p *Policy) Version() string { return p.version }

// Mode returns Enforce or Observe.
func (p *Policy) Mode() Mode { return p.mode }

// Default returns the effect for a statement no rule matches.
func (p *Policy) Default() Effect { return p.def }

// Env returns a copy of the environment labels.
func (p *Policy) Env() map[string]string { return maps.Clone(p.env) }

// Dialect returns the dialect test cases are analyzed with.
func (p *Policy) Dialect() sqlinfo.Dialect { return p.dialect }

// Rules returns the rules in evaluation-independent file order (inherited first).
func (p *Policy) Rules() []*Rule { return slices.Clone(p.rules) }

// Tests returns the file's test cases.
func (p *Policy) Tests() []TestCase { return slices.Clone(p.tests) }

// Masking returns the file's masking section, or nil when it has none.
func (p *Policy) Masking() *mask.Config { return p.masking }

// WithMode returns a copy of p in mode m (same rules, same version).
func (p *Policy) WithMode(m Mode) *Policy {
	q := *p
	q.mode = m
	return &q
}

func (p *Policy) rule(name string) *Rule {
	for _, r := range p.rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// activation resolves the CEL variables for one statement without a map.
type activation struct {
	// bounded says every variable set is within the sizes the cost
	// estimate assumed (see program).
	bounded  bool
	identity *IdentityVars
	stmt     *StatementVars
	request  *RequestVars
	env      map[string]string
	now      time.Time
}

func (a *activation) ResolveName(name string) (any, bool) {
	// A variable not set yet (the prefilter has no caller) is absent, never
	// a typed nil the interpreter would dereference.
	switch name {
	case "identity":
		return a.identity, a.identity != nil
	case "stmt":
		return a.stmt, a.stmt != nil
	case "request":
		return a.request, a.request != nil
	case "env":
		return a.env, true
	case "now":
		return a.now, !a.now.IsZero()
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// Decide evaluates the policy for in. It never fails: a rule that cannot be
// evaluated denies, naming itself. Safe for concurrent use.
func (p *Policy) Decide(ctx context.Context, in *Input) Decision {
	if in == nil {
		in = &Input{}
	}
	d, _ := p.decide(ctx, in, false)
	return d
}

// Match is one rule's outcome for one statement, for Explain.
type Match struct {
	// Statement is the index of the statement in the string.
	Statement int
	Rule      *Rule
	// Message is the rule's message for this statement.
	Message string
	// Err is set when the rule failed to evaluate (it then counts as deny).
	Err error
}

// Explanation is a decision with every rule that matched.
type Explanation struct {
	Decision Decision
	Matches  []Match
	// Statements are the CEL `stmt` values the rules saw.
	Statements []*StatementVars
	Identity   *IdentityVars
}

// Explain evaluates every rule for every statement and reports all that
// matched, as `guardctl policy explain` prints.
func (p *Policy) Explain(ctx context.Context, in *Input) Explanation {
	if in == nil {
		in = &Input{}
	}
	var ex Explanation
	ex.Decision, ex.Matches = p.decide(ctx, in, true)
	a := in.Analysis
	ex.Statements = Facts(a)
	ex.Identity = identityVars(in.Identity)
	return ex
}

func (p *Policy) decide(ctx context.Context, in *Input, all bool) (Decision, []Match) {
	a := in.Analysis
	cacheable := a != nil && len(a.Statements) > 0
	if !cacheable {
		a = unknownAnalysis("no analysis")
	}
	act := activation{env: p.envVal}
	var bits []uint64
	if !all {
		bits = p.possible(a, cacheable, &act)
	}
	best := Decision{Effect: p.def, Message: "no rule matched; default " + string(p.def)}
	bestRank := -1
	var matches []Match
	var idBounded bool
	n := len(p.ordered)
	for i := range a.Statements {
		act.stmt = nil
		for j, r := range p.ordered {
			// Every rule is evaluated, because one that fails denies, until
			// a deny is certain: nothing can change the outcome after that.
			if !all && bestRank == Deny.Rank() {
				break
			}
			k := 2 * (i*n + j)
			if bits != nil && bits[k/64]&(1<<(k%64)) == 0 {
				continue
			}
			certain := bits != nil && bits[(k+1)/64]&(1<<((k+1)%64)) != 0
			if act.identity == nil {
				act.identity = identityVars(in.Identity)
				act.request = requestVars(in.Request)
				act.now = in.Now
				if act.now.IsZero() {
					act.now = time.Now()
				}
				idBounded = act.identity.bounded() && act.request.bounded()
			}
			if act.stmt == nil {
				act.stmt = statementVars(a, i)
				act.bounded = idBounded && act.stmt.bounded()
			}
			ok, err := true, error(nil)
			if !certain {
				ok, err = evalBool(&r.match, &act)
			}
			if err != nil {
				msg := fmt.Sprintf("rule %q failed to evaluate: %v", r.Name, err)
				if all {
					matches = append(matches, Match{Statement: i, Rule: r, Message: msg, Err: err})
				}
				if bestRank < Deny.Rank() {
					best = Decision{Effect: Deny, Rule: r.Name, Message: msg}
					bestRank = Deny.Rank()
				}
				continue
			}
			if !ok {
				continue
			}
			if !all && r.Effect.Rank() <= bestRank {
				continue
			}
			msg := r.render(ctx, &act)
			if all {
				matches = append(matches, Match{Statement: i, Rule: r, Message: msg})
			}
			if r.Effect.Rank() > bestRank {
				best = Decision{Effect: r.Effect, Rule: r.Name, Message: msg}
				bestRank = r.Effect.Rank()
			}
		}
	}
	best.Policy = p.version
	best.Observed = p.mode == Observe
	return best, matches
}

// evalBool evaluates a match. It uses Eval rather than ContextEval: the
// latter costs more than most rules, and the cost estimate and runtime limit
// already bound how long an evaluation can take.
func evalBool(prg *program, act *activation) (bool, error) {
	out, err := prg.eval(act)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("match returned %s, not bool", out.Type())
	}
	return b, nil
}

// render computes the rule's message; a message expression that fails falls
// back to the rule's name rather than changing the decision.
func (r *Rule) render(ctx context.Context, act *activation) string {
	if r.message == nil {
		if r.Message == "" {
			return "rule " + r.Name
		}
		return r.Message
	}
	out, err := r.message.eval(act)
	if err != nil {
		return fmt.Sprintf("rule %s (message failed: %v)", r.Name, err)
	}
	if s, ok := out.Value().(string); ok {
		return s
	}
	return "rule " + r.Name
}
