package mask

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// luhnDigit returns the check digit that makes body+digit pass Luhn.
func luhnDigit(body string) byte {
	for d := byte('0'); d <= '9'; d++ {
		if luhn(body + string(d)) {
			return d
		}
	}
	panic("unreachable")
}

func digitsN(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.Intn(10))
	}
	return string(b)
}

func eanCheck(body string) string {
	sum := 0
	for i := 0; i < len(body); i++ {
		d := int(body[i] - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return body + string(byte('0'+(10-sum%10)%10))
}

// nonSensitive generates realistic values that must never be masked: the
// identifiers, hashes and numbers a business database is full of, including
// ones that pass the checks a weak detector would use (IMEIs pass Luhn,
// hex hashes look like keys, UUIDs look like tokens).
func nonSensitive(n int) []string {
	r := rand.New(rand.NewSource(20261128))
	words := []string{"shipped", "pending", "warehouse", "blue", "large", "refund", "approved", "batch", "pallet", "invoice", "order", "priority", "express", "returned", "sku", "hotel", "cellar", "telemetry", "callback"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	gens := []func() string{
		func() string { u, _ := uuid.NewRandomFromReader(r); return u.String() },
		func() string {
			u, _ := uuid.NewRandomFromReader(r)
			return strings.ToUpper(strings.ReplaceAll(u.String(), "-", ""))
		},
		func() string { return fmt.Sprintf("ORD-%d-%06d", 2020+r.Intn(6), r.Intn(1000000)) },
		func() string { return "SO" + digitsN(r, 10) },
		func() string { return fmt.Sprintf("INV/%d/%05d", 2024, r.Intn(99999)) },
		func() string {
			return base.Add(time.Duration(r.Int63n(int64(3 * 365 * 24 * time.Hour)))).Format(time.RFC3339)
		},
		func() string {
			return base.Add(time.Duration(r.Int63n(int64(3 * 365 * 24 * time.Hour)))).Format("2006-01-02 15:04:05.000000")
		},
		func() string { return fmt.Sprint(base.Unix() + r.Int63n(1e8)) },
		func() string { return fmt.Sprint(base.UnixMilli() + r.Int63n(1e11)) },
		func() string { return fmt.Sprintf("%.2f", r.Float64()*10000) },
		func() string { return fmt.Sprintf("$%d,%03d.%02d", r.Intn(999), r.Intn(1000), r.Intn(100)) },
		func() string { return fmt.Sprintf("EUR %d.%02d", r.Intn(100000), r.Intn(100)) },
		func() string { b := make([]byte, 16); r.Read(b); s := sha1.Sum(b); return hex.EncodeToString(s[:]) },
		func() string {
			b := make([]byte, 16)
			r.Read(b)
			s := sha256.Sum256(b)
			return hex.EncodeToString(s[:])
		},
		func() string {
			b := make([]byte, 16)
			r.Read(b)
			s := sha256.Sum256(b)
			return "sha256:" + hex.EncodeToString(s[:])
		},
		func() string { return fmt.Sprintf("v%d.%d.%d", r.Intn(20), r.Intn(50), r.Intn(200)) },
		func() string {
			return fmt.Sprintf("%d.%d.%d-rc.%d+build.%d", r.Intn(5), r.Intn(30), r.Intn(99), r.Intn(9), r.Intn(9999))
		},
		func() string { return fmt.Sprintf("lodash@%d.%d.%d", r.Intn(5), r.Intn(30), r.Intn(99)) },
		func() string {
			// IMEI: reporting-body TAC prefixes, 15 digits, Luhn-valid
			tac := []string{"35", "86", "01", "99", "49", "30", "33", "45"}[r.Intn(8)]
			body := tac + digitsN(r, 12)
			return body + string(luhnDigit(body))
		},
		func() string {
			return eanCheck([]string{"400", "401", "419", "440", "500", "590", "871"}[r.Intn(7)] + digitsN(r, 9))
		},
		func() string {
			return fmt.Sprintf("SKU-%c%c%c-%04d", 'A'+r.Intn(26), 'A'+r.Intn(26), 'A'+r.Intn(26), r.Intn(10000))
		},
		func() string {
			return fmt.Sprintf("%c%c-%d-%c", 'A'+r.Intn(26), 'A'+r.Intn(26), 1000+r.Intn(9000), 'A'+r.Intn(26))
		},
		func() string { return "1Z" + strings.ToUpper(hex.EncodeToString([]byte(digitsN(r, 8)))[:16]) },
		func() string { return fmt.Sprintf("%d", r.Int63()) },
		func() string { return digitsN(r, 9) },
		func() string {
			return fmt.Sprintf("%s %s %d items on %s", words[r.Intn(len(words))], words[r.Intn(len(words))], r.Intn(50), base.AddDate(0, 0, r.Intn(900)).Format("2006-01-02"))
		},
		func() string {
			return fmt.Sprintf(`{"sku":"SKU-%04d","qty":%d,"price":%.2f,"status":"%s","tracking":"%s"}`, r.Intn(10000), r.Intn(20), r.Float64()*500, words[r.Intn(len(words))], digitsN(r, 12))
		},
		func() string { return fmt.Sprintf("user@localhost, build@%d.%d.%d", r.Intn(9), r.Intn(9), r.Intn(9)) },
		func() string { return fmt.Sprintf("AKIA%s", strings.Repeat("A", 16)) },
		func() string { return "ghp_" + hex.EncodeToString([]byte(digitsN(r, 18))) },
		func() string { return fmt.Sprintf("GB%02d-%s", r.Intn(100), digitsN(r, 6)) },
		func() string { return []string{"DE", "GB", "FR", "NL"}[r.Intn(4)] + digitsN(r, 9) }, // VAT ids
		func() string { return fmt.Sprintf("call queue %d, tel. ext %d", r.Intn(100), r.Intn(9999)) },
		func() string { return fmt.Sprintf("eyJ%s", digitsN(r, 20)) },
		func() string {
			return fmt.Sprintf("10.%d.%d.%d:%d", r.Intn(256), r.Intn(256), r.Intn(256), 1024+r.Intn(60000))
		},
	}
	out := make([]string, n)
	for i := range out {
		out[i] = gens[i%len(gens)]()
	}
	return out
}

func TestPrecisionNonSensitiveValuesStayClear(t *testing.T) {
	e := mustNew(t, nil)
	values := nonSensitive(12000)
	rs := ResultSet{Columns: []string{"reference", "detail", "payload", "code"}, DatabaseTypes: []string{"TEXT", "VARCHAR", "", "CHAR"}}
	p := e.Plan(context.Background(), rs)
	require.NotNil(t, p, "text columns are scanned by default")
	masked := 0
	for i := 0; i+4 <= len(values); i += 4 {
		dest := []driver.Value{values[i], []byte(values[i+1]), values[i+2], []byte(values[i+3])}
		p.Apply(dest)
		for k, v := range dest {
			var s string
			switch x := v.(type) {
			case string:
				s = x
			case []byte:
				s = string(x)
			}
			if s != values[i+k] {
				masked++
				t.Errorf("masked a non-sensitive value: %q -> %q", values[i+k], s)
			}
		}
	}
	assert.Zero(t, masked)
	assert.Empty(t, p.Stats())
}

func TestSensitiveValuesAreMaskedInEveryCell(t *testing.T) {
	e := mustNew(t, nil)
	// by column name: any value at all
	named := map[string][]driver.Value{
		"email":         {"alice@example.com", "not-even-an-email"},
		"phone":         {"+1 650-253-0000", int64(6502530000)},
		"ssn":           {"536-22-1234", int64(536221234)},
		"card_number":   {"4111111111111111", []byte("5555 5555 5555 4444")},
		"iban":          {"DE89370400440532013000"},
		"date_of_birth": {time.Date(1980, 2, 29, 0, 0, 0, 0, time.UTC), "1980-02-29"},
		"password":      {"hunter2", []byte("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy")},
		"api_key":       {"0123456789abcdef"},
		"home_address":  {"1 Main St, Springfield"},
		"last_name":     {"Smith"},
		"ip_address":    {"203.0.113.7"},
	}
	for col, vals := range named {
		for _, v := range vals {
			row, _ := apply(t, e, cols(col), v)
			assert.NotEqual(t, v, row[0], "%s %v", col, v)
			if s, ok := v.(string); ok && len(s) > 4 {
				assert.NotContains(t, fmt.Sprint(row[0]), s, col)
			}
		}
	}
	// by value, in a column whose name says nothing, alone and inside text and JSON
	values := []string{
		"alice@example.com", "4111 1111 1111 1111", "378282246310005", "GB82WEST12345698765432",
		testJWT, testPEM, testAWS, testGitHub, testSlack, testStripe, testGoogle, testOpenAI,
	}
	for _, v := range values {
		for _, cell := range []string{v, "see: " + v + " (copied)", `{"k":"` + strings.ReplaceAll(v, "\n", `\n`) + `"}`} {
			row, stats := apply(t, e, cols("misc"), cell)
			out := row[0].(string)
			assert.NotContains(t, out, v, cell)
			assert.NotEqual(t, cell, out)
			require.Len(t, stats, 1, cell)
			assert.Equal(t, int64(1), stats[0].Cells)
		}
	}
	// numbers without a checksum: only with a keyword or key as evidence
	for _, cell := range []string{"SSN 536-22-1234", "mobile: +44 20 7946 0958", `{"ssn":"536-22-1234"}`, `{"phone":"650 253 0000"}`} {
		row, _ := apply(t, e, cols("misc"), cell)
		assert.NotEqual(t, cell, row[0])
	}
}
