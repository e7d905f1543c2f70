package mask

import (
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"math"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Finding is a sensitive value found inside a text: the byte span
// text[Start:End], its class and the detector that proved it.
type Finding struct {
	Start, End int
	Class      Class
	// Detector names the proof: "card", "iban", "email", "jwt",
	// "private_key", "aws_access_key", "github_token", "slack_token",
	// "stripe_key", "google_api_key", "openai_key", "anthropic_key", "ssn", "phone".
	Detector string
}

// Find returns the sensitive values the high-precision detectors prove inside
// text, in order and without overlap. SSNs and phone numbers are reported only
// when a keyword such as "ssn" or "phone" stands just before them, since
// their digits alone prove nothing. Phone numbers without a country code are
// read as numbers of region (ISO 3166 code, e.g. "US").
func Find(text, region string) []Finding {
	return findAll(nil, text, region)
}

// trigger marks bytes at which a detector may start.
var trigger = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for _, c := range "@egxsr-+(" {
		t[c] = true
	}
	return t
}()

// byteClass holds, per byte, the character classes the detectors ask about,
// so the scan loop does one table load per byte instead of range compares.
var byteClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= '0' && c <= '9':
			t[c] = bcDigit | bcAlnum | bcWord
		case c >= 'A' && c <= 'Z':
			t[c] = bcUpper | bcAlnum | bcWord
		case c >= 'a' && c <= 'z':
			t[c] = bcLower | bcAlnum | bcWord
		case c == '_':
			t[c] = bcWord
		}
	}
	return t
}()

const (
	bcDigit uint8 = 1 << iota
	bcUpper
	bcLower
	bcAlnum
	bcWord
)

func isDigit(c byte) bool { return byteClass[c]&bcDigit != 0 }
func isUpper(c byte) bool { return byteClass[c]&bcUpper != 0 }
func isLower(c byte) bool { return byteClass[c]&bcLower != 0 }
func isAlnum(c byte) bool { return byteClass[c]&bcAlnum != 0 }
func isWord(c byte) bool  { return byteClass[c]&bcWord != 0 }

// isTokenByte is a byte that can continue an API key or base64url text.
func isTokenByte(c byte) bool { return isWord(c) || c == '-' }

func boundaryBefore(s string, i int) bool { return i == 0 || !isWord(s[i-1]) }

func findAll(dst []Finding, s, region string) []Finding {
	last := 0   // end of the previous finding: spans never overlap
	var kw int8 // keyword evidence anywhere in s: 0 not looked yet, 1 none, 2 some
	for i := 0; i < len(s); {
		for i < len(s) && !trigger[s[i]] {
			i++
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c == '@' {
			if st, en, ok := findEmail(s, i, last); ok {
				dst = append(dst, Finding{st, en, Email, "email"})
				last, i = en, en
				continue
			}
			i++
			continue
		}
		if c == '-' {
			if strings.HasPrefix(s[i:], "-----BEGIN ") {
				if en, ok := findPEM(s, i); ok {
					dst = append(dst, Finding{i, en, Secret, "private_key"})
					last, i = en, en
					continue
				}
			}
			i++
			continue
		}
		if !boundaryBefore(s, i) {
			if !isWord(c) {
				i++
				continue
			}
			// inside a word: nothing can start before the word ends
			for i < len(s) && isWord(s[i]) {
				i++
			}
			continue
		}
		if isDigit(c) && digitRun(s, i) < 7 {
			// no detector takes fewer than 7 digits (dates, prices, small ids)
			for i < len(s) && isAlnum(s[i]) {
				i++
			}
			continue
		}
		if en, d := findAt(s, i, region, &kw); d != detNone {
			dst = append(dst, Finding{i, en, detectors[d].class, detectors[d].name})
			last, i = en, en
			continue
		}
		if isDigit(c) {
			// skip the rest of this number so a run is judged once
			for i < len(s) && isAlnum(s[i]) {
				i++
			}
			continue
		}
		i++
	}
	return dst
}

// digitRun counts the digits from i on, across the separators a card or
// phone number may hold, stopping early once there are 7.
func digitRun(s string, i int) int {
	n := 0
	for ; i < len(s) && n < 7; i++ {
		c := s[i]
		if isDigit(c) {
			n++
		} else if c != ' ' && c != '-' && c != '.' && c != '(' && c != ')' {
			break
		}
	}
	return n
}

// detector identifies what findAt proved, so the hot path returns two words
// instead of a Finding.
type detector uint8

const (
	detNone detector = iota
	detCard
	detIBAN
	detAWS
	detGoogle
	detJWT
	detGitHub
	detSlack
	detStripe
	detAnthropic
	detOpenAI
	detSSN
	detPhone
)

var detectors = [...]struct {
	class Class
	name  string
}{
	detCard: {Card, "card"}, detIBAN: {IBAN, "iban"}, detAWS: {Secret, "aws_access_key"},
	detGoogle: {Secret, "google_api_key"}, detJWT: {Secret, "jwt"}, detGitHub: {Secret, "github_token"},
	detSlack: {Secret, "slack_token"}, detStripe: {Secret, "stripe_key"}, detAnthropic: {Secret, "anthropic_key"},
	detOpenAI: {Secret, "openai_key"}, detSSN: {SSN, "ssn"}, detPhone: {Phone, "phone"},
}

// findAt tries every detector that can start at the word boundary i and
// returns where the proven value ends and which detector proved it.
func findAt(s string, i int, region string, kw *int8) (int, detector) {
	c := s[i]
	switch {
	case isDigit(c), c == '+', c == '(':
		if isDigit(c) {
			if en, ok := findCard(s, i); ok {
				return en, detCard
			}
		}
		return findContextNumber(s, i, region, kw)
	case isUpper(c):
		if en, ok := findIBAN(s, i); ok {
			return en, detIBAN
		}
		if en, ok := findAWSKey(s, i); ok {
			return en, detAWS
		}
		if strings.HasPrefix(s[i:], "AIza") {
			if en := tokenEnd(s, i+4); en-i == 39 {
				return en, detGoogle
			}
		}
	case c == 'e':
		if en, ok := findJWT(s, i); ok {
			return en, detJWT
		}
	case c == 'g':
		if en, ok := findGitHub(s, i); ok {
			return en, detGitHub
		}
	case c == 'x':
		if en, ok := findSlack(s, i); ok {
			return en, detSlack
		}
	case c == 's' || c == 'r':
		if strings.HasPrefix(s[i:], "sk_live_") || strings.HasPrefix(s[i:], "rk_live_") {
			if en := alnumEnd(s, i+8); en-(i+8) >= 24 && !(en < len(s) && isTokenByte(s[en])) {
				return en, detStripe
			}
		}
		if strings.HasPrefix(s[i:], "sk-ant-") {
			if en := tokenEnd(s, i+7); en-i >= 90 {
				return en, detAnthropic
			}
		}
		if strings.HasPrefix(s[i:], "sk-") {
			// OpenAI keys carry "T3BlbkFJ" (base64 of "OpenAI") in the middle.
			if en := tokenEnd(s, i+3); en-i >= 40 && strings.Contains(s[i:en], "T3BlbkFJ") {
				return en, detOpenAI
			}
		}
	}
	return 0, detNone
}

func tokenEnd(s string, i int) int {
	for i < len(s) && isTokenByte(s[i]) {
		i++
	}
	return i
}

func alnumEnd(s string, i int) int {
	for i < len(s) && isAlnum(s[i]) {
		i++
	}
	return i
}

// ---- email ----

func isLocalByte(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

func isDomainByte(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// findEmail reads the address around the '@' at at, not reaching before min.
func findEmail(s string, at, min int) (int, int, bool) {
	st := at
	for st > min && at-st < 64 && isLocalByte(s[st-1]) {
		st--
	}
	for st < at && (s[st] == '.' || s[st] == '\'') {
		st++
	}
	if st == at || s[at-1] == '.' || strings.Contains(s[st:at], "..") {
		return 0, 0, false
	}
	en := at + 1
	for en < len(s) && en-at <= 255 && isDomainByte(s[en]) {
		en++
	}
	for en > at+1 && (s[en-1] == '.' || s[en-1] == '-') {
		en--
	}
	if !validDomain(s[at+1 : en]) {
		return 0, 0, false
	}
	return st, en, true
}

func validDomain(d string) bool {
	if len(d) < 4 || len(d) > 253 {
		return false
	}
	labels := 0
	for len(d) > 0 {
		dot := strings.IndexByte(d, '.')
		var l string
		if dot < 0 {
			l, d = d, ""
		} else {
			l, d = d[:dot], d[dot+1:]
		}
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		labels++
		if d == "" {
			if labels < 2 || !isTLD(l) {
				return false
			}
		}
	}
	return true
}

// ValidEmail reports whether s is exactly one email address whose domain
// ends in a real top-level domain.
func ValidEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return false
	}
	st, en, ok := findEmail(s, at, 0)
	return ok && st == 0 && en == len(s)
}

// ---- payment cards ----

// findCard reads digits from i with an optional single ' ' or '-' between
// groups and reports where a valid card number ends.
func findCard(s string, i int) (int, bool) {
	var digits [19]byte
	n, j := 0, i
	var sep byte
	end := i
	for j < len(s) {
		c := s[j]
		if isDigit(c) {
			if n == len(digits) {
				return 0, false
			}
			digits[n] = c
			n++
			j++
			end = j
			continue
		}
		if (c == ' ' || c == '-') && j+1 < len(s) && isDigit(s[j+1]) && j > i && isDigit(s[j-1]) {
			if sep == 0 {
				sep = c
			} else if sep != c {
				break
			}
			j++
			continue
		}
		break
	}
	if end < len(s) && isWord(s[end]) {
		return 0, false
	}
	if n < 14 || !ValidCard(string(digits[:n])) {
		return 0, false
	}
	return end, true
}

// ValidCard reports whether s (digits only) is a payment card number: an
// issuer's prefix with a length that issuer uses (14-16 digits; see
// issuerLength for why not 17-19), and the Luhn check. Strings
// of one repeated digit are refused, and so are numbers of issuers that do
// not exist (an IMEI passes Luhn but starts with a reporting-body code, not
// an issuer prefix, or has 15 digits where only American Express does).
func ValidCard(s string) bool {
	n := len(s)
	if n < 14 || n > 16 {
		return false
	}
	same := true
	for i := 0; i < n; i++ {
		if !isDigit(s[i]) {
			return false
		}
		if s[i] != s[0] {
			same = false
		}
	}
	if same || !issuerLength(s) {
		return false
	}
	return luhn(s)
}

func luhn(s string) bool {
	sum := 0
	double := false
	for i := len(s) - 1; i >= 0; i-- {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func prefixNum(s string, k int) int {
	v := 0
	for i := 0; i < k && i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}

// issuerLength checks the issuer identification number and length. Only
// 14-16 digit numbers count: issuers also hand out 17-19 digit numbers
// (Maestro, UnionPay, some Visa), but bare 17-19 digit integers are mostly
// database ids (snowflakes, random int64 keys), and one in ten of those
// passes Luhn. Columns named as card numbers are masked whatever their length.
func issuerLength(s string) bool {
	n := len(s)
	p1, p2, p3, p4, p6 := prefixNum(s, 1), prefixNum(s, 2), prefixNum(s, 3), prefixNum(s, 4), prefixNum(s, 6)
	switch {
	case p1 == 4: // Visa; 13-digit Visa cards are long gone, and EAN-13 barcodes from 400-440 would pass
		return n == 16
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n == 16
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n == 16
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n == 14 || n == 16
	case p2 == 62: // UnionPay
		return n == 16
	case p4 >= 2200 && p4 <= 2204: // Mir
		return n == 16
	case p4 == 5018, p4 == 5020, p4 == 5038, p4 == 5893, p4 == 6304, p4 == 6759, p4 == 6761, p4 == 6762, p4 == 6763: // Maestro
		return n == 16
	}
	return false
}

// ---- IBAN ----

// findIBAN reads an IBAN at i, electronic ("DE89370400440532013000") or
// printed in groups ("DE89 3704 0044 0532 0130 00").
func findIBAN(s string, i int) (int, bool) {
	if i+4 > len(s) || !isUpper(s[i+1]) || !isDigit(s[i+2]) || !isDigit(s[i+3]) {
		return 0, false
	}
	want, ok := ibanLengths[s[i:i+2]]
	if !ok {
		return 0, false
	}
	var buf [34]byte
	n, j := 0, i
	for j < len(s) && n < want {
		c := s[j]
		switch {
		case isDigit(c) || isUpper(c):
			buf[n] = c
			n++
			j++
		case c == ' ' && n%4 == 0 && n > 0 && j+1 < len(s) && (isDigit(s[j+1]) || isUpper(s[j+1])):
			j++
		default:
			return 0, false
		}
	}
	if n != want || (j < len(s) && isWord(s[j])) {
		return 0, false
	}
	if !ibanChecksum(string(buf[:n])) {
		return 0, false
	}
	return j, true
}

// ValidIBAN reports whether s (spaces allowed between groups of four) is an
// IBAN: a known country, that country's length and the mod-97 check.
func ValidIBAN(s string) bool {
	if len(s) < 4 {
		return false
	}
	en, ok := findIBAN(s, 0)
	return ok && en == len(s)
}

func ibanChecksum(s string) bool {
	if want, ok := ibanLengths[s[:2]]; !ok || want != len(s) {
		return false
	}
	check := prefixNum(s[2:4], 2)
	if check < 2 || check > 98 {
		return false
	}
	rot := s[4:] + s[:4]
	rem := 0
	for i := 0; i < len(rot); i++ {
		c := rot[i]
		switch {
		case isDigit(c):
			rem = (rem*10 + int(c-'0')) % 97
		case isUpper(c):
			rem = (rem*100 + int(c-'A'+10)) % 97
		default:
			return false
		}
	}
	return rem == 1
}

// ---- secrets ----

// findAWSKey accepts an AWS access key id (AKIA long-term, ASIA temporary)
// whose 16 random characters carry real entropy; documentation keys ending
// in "EXAMPLE" and filler such as "AKIAAAAAAAAAAAAAAAAA" are refused.
func findAWSKey(s string, i int) (int, bool) {
	if i+20 > len(s) {
		return 0, false
	}
	switch s[i : i+4] {
	case "AKIA", "ASIA", "ABIA", "ACCA":
	default:
		return 0, false
	}
	body := s[i+4 : i+20]
	for k := 0; k < len(body); k++ {
		if !isUpper(body[k]) && !isDigit(body[k]) {
			return 0, false
		}
	}
	if i+20 < len(s) && isWord(s[i+20]) {
		return 0, false
	}
	if strings.HasSuffix(body, "EXAMPLE") || entropy(body) < 3.0 {
		return 0, false
	}
	return i + 20, true
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(s))
			h -= p * math.Log2(p)
		}
	}
	return h
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// findGitHub accepts GitHub tokens: ghp_/gho_/ghu_/ghs_/ghr_ with 30 random
// characters and a 6-character base62 CRC32 of them, or a fine-grained
// github_pat_ token of the documented shape.
func findGitHub(s string, i int) (int, bool) {
	if strings.HasPrefix(s[i:], "github_pat_") {
		en := tokenEnd(s, i+11)
		body := s[i+11 : en]
		if len(body) == 82 && body[22] == '_' {
			return en, true
		}
		return 0, false
	}
	if i+40 > len(s) || s[i+3] != '_' {
		return 0, false
	}
	switch s[i : i+3] {
	case "ghp", "gho", "ghu", "ghs", "ghr":
	default:
		return 0, false
	}
	if alnumEnd(s, i+4) != i+40 || (i+40 < len(s) && isTokenByte(s[i+40])) {
		return 0, false
	}
	if !githubChecksum(s[i+4:i+34], s[i+34:i+40]) {
		return 0, false
	}
	return i + 40, true
}

func githubChecksum(body, check string) bool {
	c := crc32.ChecksumIEEE([]byte(body))
	var b [6]byte
	for k := 5; k >= 0; k-- {
		b[k] = base62[c%62]
		c /= 62
	}
	return string(b[:]) == check
}

// findSlack accepts Slack tokens: xoxb-, xoxp-, xoxa-, xoxo-, xoxr-, xoxs-
// followed by dash-separated groups, the first numeric.
func findSlack(s string, i int) (int, bool) {
	if i+5 > len(s) || !strings.HasPrefix(s[i:], "xox") || s[i+4] != '-' || !strings.ContainsRune("abposr", rune(s[i+3])) {
		return 0, false
	}
	en := tokenEnd(s, i+5)
	parts := strings.Split(s[i+5:en], "-")
	if len(parts) < 3 {
		return 0, false
	}
	if len(parts[0]) < 6 || strings.Trim(parts[0], "0123456789") != "" {
		return 0, false
	}
	lastPart := parts[len(parts)-1]
	if len(lastPart) < 16 || alnumEnd(lastPart, 0) != len(lastPart) {
		return 0, false
	}
	return en, true
}

// findJWT accepts header.payload.signature where the header is base64url
// JSON with an "alg" and the payload is base64url.
func findJWT(s string, i int) (int, bool) {
	if !strings.HasPrefix(s[i:], "eyJ") {
		return 0, false
	}
	h := tokenEnd(s, i)
	if h >= len(s) || s[h] != '.' {
		return 0, false
	}
	p := tokenEnd(s, h+1)
	if p == h+1 || p >= len(s) || s[p] != '.' {
		return 0, false
	}
	sig := tokenEnd(s, p+1)
	if sig < len(s) && s[sig] == '.' {
		return 0, false
	}
	if !jwtHeader(s[i:h]) {
		return 0, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s[h+1:p], "=")); err != nil {
		return 0, false
	}
	return sig, true
}

func jwtHeader(seg string) bool {
	if len(seg) > 2048 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return false
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	if json.Unmarshal(raw, &hdr) != nil || hdr.Alg == nil || *hdr.Alg == "" {
		return false
	}
	return true
}

// ValidJWT reports whether s is a JSON Web Token (JWS compact form) with a
// decodable header naming its algorithm.
func ValidJWT(s string) bool {
	en, ok := findJWT(s, 0)
	return ok && en == len(s)
}

// findPEM accepts a PEM private key block, from BEGIN to its END line (or to
// the end of the text when the block is cut off).
func findPEM(s string, i int) (int, bool) {
	hdrEnd := strings.Index(s[i+11:], "-----")
	if hdrEnd < 0 || hdrEnd > 40 {
		return 0, false
	}
	label := s[i+11 : i+11+hdrEnd]
	if !strings.HasSuffix(label, "PRIVATE KEY") {
		return 0, false
	}
	body := i + 11 + hdrEnd + 5
	end := "-----END " + label + "-----"
	if k := strings.Index(s[body:], end); k >= 0 {
		return body + k + len(end), true
	}
	return len(s), true
}

// ---- numbers without a checksum ----

// ValidSSN reports whether s is a US Social Security number that the SSA
// rules allow: area 001-899 except 666, group 01-99, serial 0001-9999, and
// not a number burnt by advertising (078-05-1120, 219-09-9999, 123-45-6789).
// Accepted shapes: 123-45-6789, 123 45 6789, 123456789.
func ValidSSN(s string) bool {
	var d string
	switch {
	case len(s) == 9:
		d = s
	case len(s) == 11 && (s[3] == '-' && s[6] == '-' || s[3] == ' ' && s[6] == ' '):
		d = s[:3] + s[4:6] + s[7:]
	default:
		return false
	}
	for i := 0; i < 9; i++ {
		if !isDigit(d[i]) {
			return false
		}
	}
	area, group, serial := prefixNum(d, 3), prefixNum(d[3:], 2), prefixNum(d[5:], 4)
	if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
		return false
	}
	switch d {
	case "078051120", "219099999", "123456789":
		return false
	}
	return true
}

// ValidPhone reports whether s is a valid phone number by libphonenumber's
// metadata; numbers without a country code are read as numbers of region.
func ValidPhone(s, region string) bool {
	if len(s) > 40 {
		return false
	}
	if region == "" {
		region = "US"
	}
	n, err := phonenumbers.Parse(s, region)
	if err != nil {
		return false
	}
	return phonenumbers.IsValidNumber(n)
}

// hasFold reports whether s[k:hi] starts with the lower-case word w, ignoring case.
func hasFold(s string, k, hi int, w string) bool {
	if hi-k < len(w) {
		return false
	}
	for j := 0; j < len(w); j++ {
		if s[k+j]|0x20 != w[j] {
			return false
		}
	}
	return true
}

// keywordsIn reports which evidence s[lo:hi] holds, compared without
// case: an SSN keyword, a phone keyword. One pass, no allocation.
func keywordsIn(s string, lo, hi int) (ssn, phone bool) {
	for k := lo; k < hi; k++ {
		switch s[k] | 0x20 {
		case 's':
			ssn = ssn || hasFold(s, k, hi, "ssn") || hasFold(s, k, hi, "ss#") || hasFold(s, k, hi, "social security")
			phone = phone || hasFold(s, k, hi, "sms")
		case 'p':
			phone = phone || hasFold(s, k, hi, "phone")
		case 't':
			phone = phone || hasFold(s, k, hi, "tel")
		case 'm':
			phone = phone || hasFold(s, k, hi, "mobile")
		case 'c':
			phone = phone || hasFold(s, k, hi, "cell") || hasFold(s, k, hi, "call")
		case 'f':
			phone = phone || hasFold(s, k, hi, "fax")
		case 'w':
			phone = phone || hasFold(s, k, hi, "whatsapp")
		}
	}
	return ssn, phone
}

// isISODate reports whether s[i:] starts with YYYY-MM-DD, which is a date
// and never a phone number or an SSN.
func isISODate(s string, i int) bool {
	if len(s)-i < 10 || s[i+4] != '-' || s[i+7] != '-' {
		return false
	}
	for _, k := range [...]int{0, 1, 2, 3, 5, 6, 8, 9} {
		if !isDigit(s[i+k]) {
			return false
		}
	}
	return true
}

// findContextNumber finds an SSN or phone number at i when a keyword within
// the 40 bytes before it says what the number is.
func findContextNumber(s string, i int, region string, kw *int8) (int, detector) {
	j := i
	digits := 0
	for j < len(s) {
		c := s[j]
		if isDigit(c) {
			digits++
		} else if !(c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || (c == '+' && j == i)) {
			break
		}
		if digits > 15 {
			return 0, detNone
		}
		j++
	}
	for j > i && !isDigit(s[j-1]) {
		j--
	}
	if digits < 7 || (j < len(s) && isWord(s[j])) || isISODate(s, i) {
		return 0, detNone
	}
	lo := i - 40
	if lo < 0 {
		lo = 0
	}
	if *kw == 0 {
		// most texts hold no keyword at all: look once, then skip every number
		ssnAny, phoneAny := keywordsIn(s, 0, len(s))
		*kw = 1
		if ssnAny || phoneAny {
			*kw = 2
		}
	}
	if *kw == 1 {
		return 0, detNone
	}
	cand := s[i:j]
	ssnWord, phoneWord := keywordsIn(s, lo, i)
	if ssnWord && digits == 9 && ValidSSN(cand) {
		return j, detSSN
	}
	if phoneWord && ValidPhone(cand, region) {
		return j, detPhone
	}
	return 0, detNone
}
