package mask

import (
	"strings"
	"unicode"
)

// Class names a kind of sensitive value. Rules select by class, redaction
// tokens are per class, and audit stats report the class.
type Class string

// The built-in classes. Config may add more (Config.Classes).
const (
	Email     Class = "email"
	Phone     Class = "phone"
	SSN       Class = "ssn"
	Card      Class = "card"
	IBAN      Class = "iban"
	BirthDate Class = "birth_date"
	// Secret covers passwords, API keys and tokens found by column name, and
	// credentials proven by a value detector (JWT, PEM private keys, AWS,
	// GitHub, Slack, Stripe, Google and OpenAI keys).
	Secret    Class = "secret"
	Address   Class = "address"
	Name      Class = "name"
	IPAddress Class = "ip_address"
)

// rank orders classes by how much harm a leak does, so a value derived from
// several sensitive sources is masked as the most sensitive of them.
var rank = map[Class]int{Secret: 10, Card: 9, SSN: 8, IBAN: 7, Email: 6, Phone: 5, BirthDate: 4, Address: 3, Name: 2, IPAddress: 1}

func moreSensitive(a, b Class) bool {
	if b == "" {
		return a != ""
	}
	return rank[a] > rank[b]
}

// namePattern is one phrase that marks a column name as holding a class.
// words is matched whole-word against the column's words; the phrase written
// without separators ("firstname") matches a single concatenated word too.
type namePattern struct {
	class  Class
	words  []string
	joined string
}

// builtinNames lists the phrases in the order they are tried: more specific
// phrases first, so "email_address" is an email and "ip_address" an IP
// address before "address" can claim them.
var builtinNames = []struct {
	class   Class
	phrases []string
}{
	{Secret, []string{"password", "passwd", "pwd", "passphrase", "secret", "client secret", "api key", "apikey", "access key", "secret key", "private key", "access token", "refresh token", "auth token", "session token", "bearer token", "token", "otp secret", "mfa secret", "totp secret", "pin code", "cvv", "cvc", "card security code"}},
	{Card, []string{"card number", "card no", "card num", "credit card", "debit card", "cc number", "ccnum", "cc num", "ccn", "pan", "primary account number"}},
	{IBAN, []string{"iban"}},
	{SSN, []string{"ssn", "social security number", "social security", "social security no", "sin number", "tax id", "taxpayer id", "tin", "national id", "national insurance number", "nino", "passport number", "passport no", "driver license", "drivers license", "driving licence"}},
	{Email, []string{"email", "e mail", "mail address", "email address"}},
	{IPAddress, []string{"ip address", "ip addr", "ipaddr", "ip", "ipv4", "ipv6", "client ip", "remote ip", "remote addr", "remote address", "source ip"}},
	{Phone, []string{"phone", "phone number", "telephone", "tel", "mobile", "mobile number", "cell phone", "cellphone", "fax", "msisdn"}},
	{BirthDate, []string{"birth date", "birthdate", "date of birth", "dob", "birthday", "birth day", "born on"}},
	{Address, []string{"address", "street", "street address", "address line", "addr", "postal address", "home address", "billing address", "shipping address", "mailing address", "postcode", "post code", "zip code", "zipcode", "postal code"}},
	{Name, []string{"first name", "last name", "full name", "given name", "family name", "middle name", "maiden name", "surname", "forename", "display name", "legal name", "customer name", "contact name", "patient name", "employee name", "person name", "holder name", "cardholder name", "account holder", "recipient name", "sender name", "billing name", "shipping name"}},
}

// qualifierWords after a matched phrase say the column is about the value,
// not the value itself: email_verified, phone_count, token_type, address_id.
var qualifierWords = map[string]bool{
	"id": true, "ids": true, "count": true, "cnt": true, "num": false, "verified": true, "confirmed": true, "type": true,
	"types": true, "status": true, "enabled": true, "required": true, "length": true, "len": true, "limit": true,
	"used": true, "usage": true, "expires": true, "expiry": true, "expiration": true, "expired": true, "at": true,
	"changed": true, "updated": true, "created": true, "set": true, "policy": true, "hint": true, "format": true,
	"kind": true, "label": true, "prefix": true, "version": true, "algorithm": true, "algo": true, "rotated": true,
	"reset": true, "attempts": true, "opt": true, "optin": true, "consent": true, "valid": true, "validated": true,
	"visible": true, "public": true, "domain": true, "provider": true, "template": true, "family": true, "range": true,
	"bounced": true, "sent": true, "app": true, "device": true, "os": true, "platform": true, "carrier": true, "count_total": true, "country": true, "region": true, "lookup": true,
}

// prefixWords before a matched phrase make the column a flag or a count.
var prefixWords = map[string]bool{
	"has": true, "is": true, "num": true, "number": false, "count": true, "n": true, "no": false, "max": true, "min": true,
	"allow": true, "require": true, "requires": true, "needs": true, "mac": true, "web": true, "wallet": true,
	"server": true, "host": true, "bind": true, "listen": true, "local": true, "gateway": true, "contract": true,
	"url": true, "memory": true, "base": true, "return": true, "ipv6": false, "page": true, "csrf": false,
}

// splitWords splits a column name into lower-case words at non-alphanumeric
// characters, lower-to-upper case changes and letter-digit changes, so
// "customerEmail", "customer_email" and "CUSTOMER-EMAIL" read alike.
func splitWords(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if len(cur) > 0 {
			prev := rs[i-1]
			switch {
			case unicode.IsLower(prev) && unicode.IsUpper(r):
				flush()
			case unicode.IsUpper(prev) && unicode.IsUpper(r) && i+1 < len(rs) && unicode.IsLower(rs[i+1]):
				// "APIKey" -> "API", "Key"
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// nameClassifier maps column names (and JSON keys) to classes.
type nameClassifier struct {
	patterns []namePattern
}

func newNameClassifier(extra []ClassConfig) *nameClassifier {
	nc := &nameClassifier{}
	// Phrases from the config come first so a user can claim a name for a
	// class of their own.
	for _, c := range extra {
		for _, p := range c.Columns {
			nc.add(Class(strings.ToLower(c.Name)), p)
		}
	}
	for _, b := range builtinNames {
		for _, p := range b.phrases {
			nc.add(b.class, p)
		}
	}
	return nc
}

func (nc *nameClassifier) add(c Class, phrase string) {
	w := splitWords(phrase)
	if len(w) == 0 {
		return
	}
	nc.patterns = append(nc.patterns, namePattern{class: c, words: w, joined: strings.Join(w, "")})
}

// classify returns the class a column or key name marks, or "".
func (nc *nameClassifier) classify(name string) Class {
	words := splitWords(name)
	if len(words) == 0 {
		return ""
	}
	if c := nc.match(words); c != "" {
		return c
	}
	// plurals ("phones", "emails", "addresses") name lists of the same values;
	// not for secrets, where "tokens" is usually a count
	plural := false
	single := make([]string, len(words))
	for i, w := range words {
		single[i] = w
		switch {
		case strings.HasSuffix(w, "sses"), strings.HasSuffix(w, "shes"):
			single[i], plural = w[:len(w)-2], true
		case len(w) > 3 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss"):
			single[i], plural = w[:len(w)-1], true
		}
	}
	if plural {
		if c := nc.match(single); c != Secret {
			return c
		}
	}
	return ""
}

func (nc *nameClassifier) match(words []string) Class {
	for _, p := range nc.patterns {
		if start, end, ok := matchPhrase(words, p); ok {
			if end < len(words) && qualifierWords[words[end]] {
				continue
			}
			if start > 0 && prefixWords[words[start-1]] {
				continue
			}
			return p.class
		}
	}
	return ""
}

// matchPhrase finds p in words as consecutive whole words, or as a run of
// consecutive words whose concatenation equals the phrase ("first_name" and
// "firstname" both match "first name").
func matchPhrase(words []string, p namePattern) (start, end int, ok bool) {
	n := len(p.words)
	for i := 0; i+n <= len(words); i++ {
		match := true
		for j := 0; j < n; j++ {
			if words[i+j] != p.words[j] {
				match = false
				break
			}
		}
		if match {
			return i, i + n, true
		}
	}
	for i := range words {
		if !strings.HasPrefix(p.joined, words[i]) {
			continue
		}
		acc := ""
		for j := i; j < len(words) && len(acc) < len(p.joined); j++ {
			acc += words[j]
			if acc == p.joined {
				return i, j + 1, true
			}
		}
	}
	return 0, 0, false
}
