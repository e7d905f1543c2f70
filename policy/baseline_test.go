package policy

import (
	"context"
	"testing"
)

// TestBaselineCases runs the baseline's own `tests:` through the real
// analyzer, as `guardctl policy test baseline` does.
func TestBaselineCases(t *testing.T) {
	results := Baseline().RunTests(context.Background())
	if len(results) < 30 {
		t.Fatalf("baseline has only %d test cases", len(results))
	}
	for _, r := range results {
		if !r.Passed() {
			t.Errorf("baseline:%d %s: %s\n  sql: %s\n  decision: %+v\n  facts: %+v", r.Case.Line(), r.Case.Name, r.Failure, r.Case.SQL, r.Got, Facts(r.Analysis)[0])
		}
	}
}
