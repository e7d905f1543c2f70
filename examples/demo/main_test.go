package main

import "testing"

// The demo is the first thing a newcomer runs; it must keep working.
func TestDemoRuns(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
