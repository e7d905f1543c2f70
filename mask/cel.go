package mask

import (
	"fmt"

	"cel.dev/cel-go/cel"

	"github.com/guardedsql/guard/identity"
)

// celEnv declares what a `when` condition may use: the identity the
// statement runs as, and the principal at the end of its delegation chain.
func celEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("identity", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("principal", cel.MapType(cel.StringType, cel.DynType)),
	)
}

// compileWhen compiles a condition. keyed reports whether it reads the
// identity and principal only through the fields the decision cache keys
// on, subject whether one of those is a subject.
func compileWhen(env *cel.Env, expr string) (prg cel.Program, keyed, subject bool, err error) {
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, false, false, iss.Err()
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, false, false, fmt.Errorf("condition must be a bool, is %s", t)
	}
	if prg, err = env.Program(ast, cel.CostLimit(100000)); err != nil {
		return nil, false, false, err
	}
	keyed, subject = readsOnlyKeyed(ast)
	return prg, keyed, subject, nil
}

func identityMap(id identity.Identity, depth int) map[string]any {
	roles := id.Roles
	if roles == nil {
		roles = []string{}
	}
	attrs := id.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := map[string]any{
		"subject":    id.Subject,
		"kind":       string(id.Kind),
		"roles":      roles,
		"session":    id.Session,
		"attributes": attrs,
		"anonymous":  id.IsAnonymous(),
	}
	if id.OnBehalfOf != nil && depth < 8 {
		m["on_behalf_of"] = identityMap(*id.OnBehalfOf, depth+1)
	} else {
		m["on_behalf_of"] = nil
	}
	return m
}

// evalWhen reports whether the condition holds; an evaluation error counts
// as false, so a broken condition never unmasks anything.
func evalWhen(p cel.Program, act map[string]any) bool {
	if p == nil {
		return true
	}
	out, _, err := p.Eval(act)
	if err != nil {
		return false
	}
	b, ok := out.Value().(bool)
	return ok && b
}
