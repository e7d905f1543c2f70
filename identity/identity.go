package identity

import (
	"context"
	"strings"
)

// Kind says what sort of principal an Identity is.
type Kind string

// The kinds of principal the guard distinguishes. Policies commonly treat
// agents more strictly than humans, so the distinction is first-class.
const (
	Human   Kind = "human"
	Agent   Kind = "agent"
	Service Kind = "service"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case Human, Agent, Service:
		return true
	}
	return false
}

// AnonymousSubject is the Subject of the identity used when a context carries none.
const AnonymousSubject = "anonymous"

// Identity is the principal on whose authority a statement runs.
//
// OnBehalfOf records delegation: an agent acting for a human carries the
// human as OnBehalfOf, so policy and audit see both ends of the chain.
type Identity struct {
	// Subject names the principal, e.g. "copilot-7" or "alice@example.com".
	Subject string
	// Kind is human, agent or service. Empty means unspecified.
	Kind Kind
	// Roles are the principal's roles, as the application grants them.
	Roles []string
	// OnBehalfOf is the principal this one acts for, if any.
	OnBehalfOf *Identity
	// Session identifies the conversation, request or job the statement belongs to.
	Session string
	// Attributes carries anything else policies may want (tenant, ticket...).
	Attributes map[string]string
}

// Anonymous returns the identity used when a context carries none.
func Anonymous() Identity { return Identity{Subject: AnonymousSubject} }

// IsAnonymous reports whether id is the anonymous identity.
func (id Identity) IsAnonymous() bool { return id.Subject == "" || id.Subject == AnonymousSubject }

// HasRole reports whether id has role r.
func (id Identity) HasRole(r string) bool {
	for _, x := range id.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// Chain returns id followed by every principal it acts for, nearest first.
// Cycles are cut so a malformed chain cannot loop forever.
func (id Identity) Chain() []Identity {
	out := []Identity{id}
	seen := map[*Identity]bool{}
	for p := id.OnBehalfOf; p != nil && !seen[p] && len(out) < 16; p = p.OnBehalfOf {
		seen[p] = true
		out = append(out, *p)
	}
	return out
}

// Principal returns the last identity in the delegation chain: the one
// ultimately responsible for the statement.
func (id Identity) Principal() Identity {
	c := id.Chain()
	return c[len(c)-1]
}

// String renders the chain as "copilot-7(agent) for alice@example.com(human)".
func (id Identity) String() string {
	var b strings.Builder
	for i, p := range id.Chain() {
		if i > 0 {
			b.WriteString(" for ")
		}
		b.WriteString(p.Subject)
		if p.Kind != "" {
			b.WriteString("(" + string(p.Kind) + ")")
		}
	}
	return b.String()
}

type ctxKey struct{}

// With returns a copy of ctx that carries id.
func With(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the identity carried by ctx, and whether there was one.
func From(ctx context.Context) (Identity, bool) {
	if ctx == nil {
		return Identity{}, false
	}
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// FromOrAnonymous returns the identity carried by ctx, or Anonymous.
func FromOrAnonymous(ctx context.Context) Identity {
	if id, ok := From(ctx); ok {
		return id
	}
	return Anonymous()
}
