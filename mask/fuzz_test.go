package mask

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzFind(f *testing.F) {
	for _, s := range []string{"alice@example.com", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00", testJWT, testPEM, testGitHub, testSlack,
		"SSN: 536-22-1234", "call (650) 253-0000", "@@@", "-----BEGIN ", "eyJ.eyJ.", "xoxb--", "AIza", "sk-", "ghp_", "+(", "a@b.c@d.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		last := 0
		for _, fd := range Find(s, "US") {
			if fd.Start < last || fd.End <= fd.Start || fd.End > len(s) {
				t.Fatalf("bad span %+v in %q", fd, s)
			}
			last = fd.End
		}
		ValidCard(s)
		ValidIBAN(s)
		ValidEmail(s)
		ValidJWT(s)
		ValidSSN(s)
		splitWords(s)
	})
}

func FuzzJSONWalker(f *testing.F) {
	for _, s := range []string{`{"email":"a@example.com","n":[1,2,{"ssn":123456789}]}`, `[]`, `{}`, `{"a":"\u0041@example.com"}`, `[[[[`, `{"a":1e5,"b":-0.5,"c":true,"d":null}`, `"x"`} {
		f.Add(s)
	}
	e, err := New(&Config{DefaultStrategy: Partial})
	if err != nil {
		f.Fatal(err)
	}
	p := e.Plan(context.Background(), ResultSet{Columns: []string{"doc", "address"}, DatabaseTypes: []string{"JSONB", "JSON"}})
	f.Fuzz(func(t *testing.T, s string) {
		dest := []driver.Value{s, []byte(s)}
		p.Apply(dest)
		// valid JSON in, valid JSON out: masking never breaks a document
		if json.Valid([]byte(s)) && strings.TrimSpace(s) != "" && (strings.TrimSpace(s)[0] == '{' || strings.TrimSpace(s)[0] == '[') && s[0] != ' ' && utf8.ValidString(s) {
			if out, ok := dest[0].(string); ok && !json.Valid([]byte(out)) {
				t.Fatalf("doc %q became invalid JSON %q", s, out)
			}
			if out, ok := dest[1].([]byte); ok && !json.Valid(out) {
				t.Fatalf("address %q became invalid JSON %q", s, out)
			}
		}
	})
}
