// Package identity carries who is asking, in a context.Context.
//
// Every statement the guard sees is tied to the Identity found in the
// statement's context. An agent acting for a human is one Identity whose
// OnBehalfOf points at the human, so both ends of the delegation reach policy
// and audit:
//
//	ctx = identity.With(ctx, identity.Identity{
//		Subject: "copilot-7", Kind: identity.Agent,
//		OnBehalfOf: &identity.Identity{Subject: "alice@example.com", Kind: identity.Human},
//	})
//	rows, err := db.QueryContext(ctx, "SELECT id FROM customers")
//
// A context without an identity is treated as Anonymous; the policy decides
// what the anonymous identity may do.
package identity
