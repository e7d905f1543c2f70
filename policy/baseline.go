package policy

import (
	_ "embed"
	"sync"
)

//go:embed baseline.yaml
var baselineYAML []byte

var (
	baselineOnce sync.Once
	baselineP    *Policy
)

func baseline() *Policy {
	baselineOnce.Do(func() {
		p, err := ParseFile("baseline", baselineYAML)
		if err != nil {
			panic("policy: the embedded baseline does not compile: " + err.Error()) // caught by every test
		}
		baselineP = p
	})
	return baselineP
}

// Baseline returns the built-in policy guard enforces when none is configured:
// it denies destructive DDL, unbounded UPDATE/DELETE, privilege and session
// changes, server file and program access, dynamic SQL and statements it
// cannot read, and sends writes by agents to approval. See docs/policy.md.
func Baseline() *Policy { return baseline() }

// BaselineYAML returns the baseline policy's source, a starting point for
// writing one's own.
func BaselineYAML() []byte { return append([]byte(nil), baselineYAML...) }
