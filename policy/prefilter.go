package policy

import (
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/guardedsql/guard/internal/sqlinfo"
)

// Most rules say "this kind of statement, by this kind of caller". The part
// about the statement only depends on the analysis, which the guard caches,
// so it is evaluated once per analysis and remembered: a rule whose statement
// part is false cannot match, whoever asks (in CEL, false && anything is
// false, even an error). Only the rules that survive are evaluated in full.
// That is what keeps a decision for a cached statement in the sub-microsecond
// range with tens of rules.

// staticCacheSize bounds the number of analyses whose prefilter results are kept.
const staticCacheSize = 4096

// staticPart compiles the conjuncts of a checked match expression that read
// only `stmt` and `env` (constant for a policy). It returns nil when there
// are none, and whether the whole match is static.
func staticPart(checked *cel.Ast) (*program, bool, error) {
	nat := checked.NativeRep()
	var conj []ast.Expr
	var flatten func(e ast.Expr)
	flatten = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
			for _, a := range e.AsCall().Args() {
				flatten(a)
			}
			return
		}
		conj = append(conj, e)
	}
	flatten(nat.Expr())
	var static []string
	for _, c := range conj {
		if !readsOnlyStatement(c) {
			continue
		}
		s, err := cel.ExprToString(c, nat.SourceInfo())
		if err != nil {
			return nil, false, nil // not worth failing a load over: evaluate in full
		}
		static = append(static, "("+s+")")
	}
	if len(static) == 0 {
		return nil, false, nil
	}
	prg, err := compileExpr(strings.Join(static, " && "), types.BoolType)
	if err != nil {
		return nil, false, nil
	}
	return &prg, len(static) == len(conj), nil
}

// readsOnlyStatement reports whether e refers to no per-caller variable.
// Comprehension variables that happen to share a name count as references:
// the prefilter then stays off, which is only slower.
func readsOnlyStatement(e ast.Expr) bool {
	ok := true
	ast.PreOrderVisit(e, ast.NewExprVisitor(func(x ast.Expr) {
		if x.Kind() == ast.IdentKind {
			switch x.AsIdent() {
			case "identity", "request", "now":
				ok = false
			}
		}
	}))
	return ok
}

// staticCache remembers, per analysis, which rules' statement parts held.
// Keys are the analysis pointers: the guard's analyzer cache hands out the
// same immutable *Analysis for the same statement, and holding the key keeps
// the pointer from being reused for other facts.
type staticCache struct {
	lru *lru.Cache[*sqlinfo.Analysis, []uint64]
}

func newStaticCache() *staticCache {
	c, _ := lru.New[*sqlinfo.Analysis, []uint64](staticCacheSize) // size is positive: cannot fail
	return &staticCache{lru: c}
}

// possible returns two bits per (statement, rule index in p.ordered): the
// first says the rule may match, so it must be looked at; the second that it
// certainly matches (its match is all statement part and that held).
func (p *Policy) possible(a *sqlinfo.Analysis, cacheable bool, act *activation) []uint64 {
	if cacheable {
		if bits, ok := p.cache.lru.Get(a); ok {
			return bits
		}
	}
	n := len(p.ordered)
	bits := make([]uint64, (2*len(a.Statements)*n+63)/64)
	for i := range a.Statements {
		act.stmt = statementVars(a, i)
		act.bounded = act.stmt.bounded()
		for j, r := range p.ordered {
			k := 2 * (i*n + j)
			if r.static != nil {
				ok, err := evalBool(r.static, act)
				if err == nil && !ok {
					continue
				}
				if err == nil && r.allStatic {
					bits[(k+1)/64] |= 1 << ((k + 1) % 64)
				}
			}
			bits[k/64] |= 1 << (k % 64)
		}
	}
	act.stmt, act.bounded = nil, false
	if cacheable {
		p.cache.lru.Add(a, bits)
	}
	return bits
}
