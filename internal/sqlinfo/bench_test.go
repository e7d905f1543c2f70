package sqlinfo

import (
	"fmt"
	"testing"
)

const (
	benchJoinPG = `SELECT u.id, u.email, o.total, p.name FROM users u JOIN orders o ON o.user_id = u.id ` +
		`JOIN products p ON p.id = o.product_id WHERE u.id = $1 AND o.created_at > $2 ORDER BY o.created_at DESC LIMIT 50`
	benchJoinMy = "SELECT u.id, u.email, o.total, p.name FROM users u JOIN orders o ON o.user_id = u.id " +
		"JOIN products p ON p.id = o.product_id WHERE u.id = ? AND o.created_at > ? ORDER BY o.created_at DESC LIMIT 50"
)

// BenchmarkAnalyzeCached is the hit path for a parameterized statement: the
// same text every time.
func BenchmarkAnalyzeCached(b *testing.B) {
	for _, bc := range []struct {
		d Dialect
		q string
	}{{Postgres, benchJoinPG}, {MySQL, benchJoinMy}} {
		b.Run(string(bc.d), func(b *testing.B) {
			z := NewAnalyzer(128)
			z.Analyze(bc.d, bc.q)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if z.Analyze(bc.d, bc.q).Statements[0].Effect != Read {
					b.Fatal("not a read")
				}
			}
		})
	}
}

// BenchmarkAnalyzeCachedLiterals is the hit path for one shape with inlined
// literals that differ each time (the facts are shared, the text is not).
func BenchmarkAnalyzeCachedLiterals(b *testing.B) {
	qs := make([]string, 64)
	for i := range qs {
		qs[i] = fmt.Sprintf("SELECT id, email FROM users WHERE id = %d AND name = 'n%d'", i, i)
	}
	z := NewAnalyzer(128)
	z.Analyze(Postgres, qs[0])
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if z.Analyze(Postgres, qs[i%len(qs)]).Statements[0].Effect != Read {
			b.Fatal("not a read")
		}
	}
}

// BenchmarkAnalyzeMiss parses and analyzes a typical 3-table join whose
// shape is new every time.
func BenchmarkAnalyzeMiss(b *testing.B) {
	for _, bc := range []struct {
		d Dialect
		q string
	}{{Postgres, benchJoinPG}, {MySQL, benchJoinMy}} {
		b.Run(string(bc.d), func(b *testing.B) {
			z := NewAnalyzer(128)
			qs := make([]string, b.N)
			for i := range qs {
				qs[i] = fmt.Sprintf("%s /* %d */", bc.q, i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if z.Analyze(bc.d, qs[i]).Statements[0].Effect != Read {
					b.Fatal("not a read")
				}
			}
		})
	}
}
