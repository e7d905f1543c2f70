// Package mask decides which values in a result set are sensitive and
// rewrites them before the caller sees them.
//
// Column names and lineage decide first: a column named like an email,
// phone, SSN, card number, IBAN, birth date, secret, address, person name or
// IP address (whole-word matching, so email_verified and token_count are
// not) is masked in every cell, and so is any output column the statement's
// lineage derives from such a column (lower(email), string_agg(ssn, ','),
// a CTE or subquery over them). Value detectors are the safety net for
// everything else: they flag only what structure or a checksum proves (card
// numbers with Luhn, issuer prefix and length; IBAN mod-97; email with a real
// top-level domain; JWTs with a decodable header; PEM private keys; AWS,
// GitHub, Slack, Stripe, Google, OpenAI and Anthropic keys), find those
// inside free text and JSON, and mask only the span. SSNs and phone numbers
// have no checksum, so they are flagged only with evidence: a column name, a
// JSON key, or a keyword just before them.
//
// Strategies are redact, partial, hash (keyed HMAC-SHA256, deterministic),
// null and custom functions; the masked value keeps the Go type the driver
// returned so typed Scans keep working. Config (the `masking:` section of a
// policy file) adds rules by column glob or class, strategies per identity
// kind, and CEL exemptions evaluated once per result set.
//
//	e, err := mask.New(&mask.Config{
//		Kinds:      map[string]string{"agent": mask.Hash, "human": mask.Partial},
//		Exemptions: []mask.Exemption{{Name: "pii-readers", When: `'pii_reader' in identity.roles`}},
//	}, mask.WithHashKey(key))
//	db := sql.OpenDB(guard.NewConnector(connector, guard.WithMasker(e)))
package mask
