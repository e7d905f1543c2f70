package mask

import (
	_ "embed"
	"strings"
)

// tldList is the ICANN section of the Public Suffix List reduced to its
// top-level labels (ASCII only). An email detector that accepted any
// two-letter suffix would flag "pkg@1.2.ab" and "v@2.x.rc"; a real TLD is
// part of the proof that a string is an address.
//
//go:embed tlds.txt
var tldList string

var tlds = func() map[string]struct{} {
	m := make(map[string]struct{}, 1400)
	for _, l := range strings.Split(tldList, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			m[l] = struct{}{}
		}
	}
	return m
}()

// isTLD reports whether label (any case) is a top-level domain.
func isTLD(label string) bool {
	if len(label) < 2 || len(label) > 63 {
		return false
	}
	var buf [63]byte
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	_, ok := tlds[string(buf[:len(label)])]
	return ok
}
