package policy

import (
	"context"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the policy parser: it must return a
// policy or an error, never panic, and a policy it returns must decide.
func FuzzParse(f *testing.F) {
	f.Add(baselineYAML)
	f.Add([]byte(semantics))
	f.Add([]byte("name: x\nrules:\n  - {name: a, match: \"stmt.reads.exists(r, r == 'x')\", effect: deny}\n"))
	f.Add([]byte("rules:\n  - name: a\n    match: [1]\n"))
	f.Add([]byte("extends: baseline\ndisable: [deny-drop]\nmode: observe\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			if p != nil {
				t.Fatal("policy and error")
			}
			return
		}
		d := p.Decide(context.Background(), &Input{Identity: svc, Analysis: facts(sel, drop, garbage)})
		if d.Policy != p.Version() {
			t.Fatalf("decision without version: %+v", d)
		}
	})
}
