package mask

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Credentials below are fabricated for these tests; none was ever issued.
const (
	testJWT       = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	testPEM       = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ==\n-----END RSA PRIVATE KEY-----"
	testAWS       = "AKIAZ3MHQ2LT6XK4WJ5P"
	testGitHub    = "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"
	testGitHubOAu = "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"
	testSlack     = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	testStripe    = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	testGoogle    = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
	testOpenAI    = "sk-proj-Xy7Qm2Lk9Pz4Rt6Vn8Bc1DfT3BlbkFJa5Gh3Jk7Lm9Np2Qr4St6Uv8Wx"
)

func TestValidCard(t *testing.T) {
	valid := []string{
		"4111111111111111", // Visa
		"4012888888881881", // Visa
		"5555555555554444", // Mastercard
		"2223003122003222", // Mastercard 2-series
		"378282246310005",  // American Express
		"6011111111111117", // Discover
		"3530111333300000", // JCB
		"30569309025904",   // Diners Club
		"6200000000000005", // UnionPay
	}
	for _, v := range valid {
		assert.True(t, ValidCard(v), v)
	}
	invalid := []string{
		"4111111111111112",     // Luhn fails
		"0000000000000000",     // passes Luhn, no issuer
		"00000000000000",       // passes Luhn, no issuer
		"490154203237518",      // IMEI: passes Luhn, 15 digits, no issuer
		"356938035643809",      // IMEI with TAC 35: JCB prefix but 15 digits
		"353918052876135",      // IMEI
		"1234567812345670",     // passes Luhn, prefix 1 is no issuer
		"4222222222222",        // 13-digit Visa: retired, collides with EAN-13
		"37828224631000",       // Amex prefix, wrong length
		"41111111111111111111", // 20 digits
		"6442085135613723915",  // 19-digit id that passes Luhn with a Discover prefix
		"4111-1111-1111-1111",  // ValidCard takes digits only
		"",
	}
	for _, v := range invalid {
		assert.False(t, ValidCard(v), v)
	}
	assert.True(t, luhn("0000000000000000"), "the all-zero trap passes Luhn")
	assert.True(t, luhn("490154203237518"), "the IMEI trap passes Luhn")
}

func TestValidIBAN(t *testing.T) {
	for _, v := range []string{
		"DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606",
		"NL91ABNA0417164300", "CH9300762011623852957", "DE89 3704 0044 0532 0130 00", "NO9386011117947",
	} {
		assert.True(t, ValidIBAN(v), v)
	}
	for _, v := range []string{
		"DE89370400440532013001",   // mod-97 fails
		"GB82WEST1234569876543",    // one short for GB
		"XX89370400440532013000",   // no such country
		"DE8937040044053201300012", // too long
		"de89370400440532013000",   // lower case
		"DE00370400440532013000",   // check digits 00 never valid
		"DE89 370 400440532013000", // spaces only between groups of four
		"",
	} {
		assert.False(t, ValidIBAN(v), v)
	}
}

func TestValidEmail(t *testing.T) {
	for _, v := range []string{"alice@example.com", "a.b+tag@mail.co.uk", "x_y@sub.example.io", "O'Brien@Example.ORG", "bob@xn--80ak6aa92e.com"} {
		assert.True(t, ValidEmail(v), v)
	}
	for _, v := range []string{
		"pkg@1.2.3", "user@localhost", "a@b.notatld", "foo@bar", "@example.com", "a..b@example.com",
		"alice@example.com.", "a@-example.com", "lodash@4.17.21", "image@sha256.abcdef", "tok_ab@masked.invalid", "",
	} {
		assert.False(t, ValidEmail(v), v)
	}
}

func TestValidJWT(t *testing.T) {
	assert.True(t, ValidJWT(testJWT))
	// alg "none" has an empty signature
	assert.True(t, ValidJWT("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."))
	for _, v := range []string{
		"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.abc", // header without alg
		"eyJhbGciOiJIUzI1NiJ9",                   // one segment
		"eyJhbGciOiJIUzI1NiJ9..sig",              // empty payload
		"eyJub3Rqc29u.eyJzdWIiOiJ4In0.abc",       // header not JSON
		"eyJhbGciOiJIUzI1NiJ9.e30.a.b.c",         // five segments (JWE shape, not a JWS)
		"eyJhbGciOiJIUzI1NiJ9.!!!.abc",
	} {
		assert.False(t, ValidJWT(v), v)
	}
}

func only(t *testing.T, text string) Finding {
	t.Helper()
	f := Find(text, "US")
	require.Len(t, f, 1, "%q: %+v", text, f)
	return f[0]
}

func TestFindSecrets(t *testing.T) {
	cases := map[string]string{
		testPEM: "private_key", testAWS: "aws_access_key", "ASIAY34FZKBOKMUTVV7A": "aws_access_key",
		testGitHub: "github_token", testGitHubOAu: "github_token",
		"github_pat_11ABCDEFG0123456789abc_" + strings.Repeat("aB3", 19) + "xy": "github_token",
		testSlack: "slack_token", testStripe: "stripe_key", "rk_live_51HqLyjWDarjtT1zdp7dcXYZ": "stripe_key",
		testGoogle: "google_api_key", testOpenAI: "openai_key", testJWT: "jwt",
		"sk-ant-api03-" + strings.Repeat("Ab1_", 22) + "xyzAA": "anthropic_key",
	}
	for v, det := range cases {
		f := only(t, v)
		assert.Equal(t, det, f.Detector, v)
		assert.Equal(t, Secret, f.Class)
		assert.Equal(t, 0, f.Start)
		assert.Equal(t, len(v), f.End, v)
	}
	for _, v := range []string{
		"AKIAIOSFODNN7EXAMPLE",                              // AWS documentation key
		"AKIAAAAAAAAAAAAAAAAA",                              // no entropy
		"AKIAZ3MHQ2LT6XK4WJ5PQ",                             // too long
		"ghp_IKrpwAM08O8zOsbGKSrSY0pLJf5R7L30RXfn",          // checksum off by one character
		"ghp_" + strings.Repeat("0123456789abcdef", 3)[:36], // hex hash after a prefix
		"gha_IKrpwAM08O8zOsbGKSrSY0pLJf5R7L30RXfm",          // no such prefix
		"xoxb-abc", "xoxz-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
		"sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_short",
		"AIzaSyD-9tSrke72PouQMnMX", "sk-" + strings.Repeat("a1B2", 12), "sk-ant-api03-short",
		"eyJhbGciOiJIUzI1NiJ9", "xoxb-123456789012-short",
		"-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAKj34Gkx\n-----END PUBLIC KEY-----",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		"123e4567-e89b-12d3-a456-426614174000",
		"da39a3ee5e6b4b0d3255bfef95601890afd80709",
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	} {
		assert.Empty(t, Find(v, "US"), v)
	}
}

func TestFindInText(t *testing.T) {
	text := `Customer alice@example.com paid with 4111 1111 1111 1111; refund to DE89 3704 0044 0532 0130 00. token=` + testGitHub + ` end`
	f := Find(text, "US")
	require.Len(t, f, 4)
	assert.Equal(t, "alice@example.com", text[f[0].Start:f[0].End])
	assert.Equal(t, "4111 1111 1111 1111", text[f[1].Start:f[1].End])
	assert.Equal(t, "DE89 3704 0044 0532 0130 00", text[f[2].Start:f[2].End])
	assert.Equal(t, testGitHub, text[f[3].Start:f[3].End])

	// a card number glued into a longer identifier is not a card number
	assert.Empty(t, Find("ORD4111111111111111", "US"))
	assert.Empty(t, Find("41111111111111110", "US"))
}

func TestValidSSN(t *testing.T) {
	for _, v := range []string{"536-22-1234", "001-01-0001", "899 99 9999", "536221234"} {
		assert.True(t, ValidSSN(v), v)
	}
	for _, v := range []string{
		"078-05-1120", "219-09-9999", "123-45-6789", // advertising and specimen numbers
		"000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321", // areas never issued
		"536-00-1234", "536-22-0000", "536-221-234", "53622123", "5362212345", "536-22 1234", "",
	} {
		assert.False(t, ValidSSN(v), v)
	}
}

func TestValidPhone(t *testing.T) {
	for _, v := range []string{"+1 650-253-0000", "(650) 253-0000", "+44 20 7946 0958", "+49 30 901820"} {
		assert.True(t, ValidPhone(v, "US"), v)
	}
	for _, v := range []string{"123", "+1 000 000 0000", "2024-05-06", "v1.2.3", "12345678901234567890"} {
		assert.False(t, ValidPhone(v, "US"), v)
	}
}

func TestFindNumbersNeedContext(t *testing.T) {
	// without a keyword an SSN-shaped or phone-shaped number proves nothing
	assert.Empty(t, Find("ref 536-22-1234", "US"))
	assert.Empty(t, Find("batch (650) 253-0000", "US"))

	f := only(t, "SSN: 536-22-1234")
	assert.Equal(t, SSN, f.Class)
	assert.Empty(t, Find("SSN: 078-05-1120", "US"), "advertising SSN")
	f = only(t, "call me on (650) 253-0000 tomorrow")
	assert.Equal(t, Phone, f.Class)
	assert.Equal(t, "(650) 253-0000", "call me on (650) 253-0000 tomorrow"[f.Start:f.End])
	f = only(t, "Phone +44 20 7946 0958")
	assert.Equal(t, Phone, f.Class)
}

func TestClassifyColumn(t *testing.T) {
	e, err := New(nil)
	require.NoError(t, err)
	cases := map[string]Class{
		"email": Email, "customer_email": Email, "EmailAddress": Email, "email_address": Email,
		"phone": Phone, "mobile_number": Phone, "ssn": SSN, "social_security_number": SSN,
		"card_number": Card, "cardNumber": Card, "pan": Card, "credit_card": Card, "iban": IBAN,
		"dob": BirthDate, "date_of_birth": BirthDate, "birthdate": BirthDate,
		"password": Secret, "password_hash": Secret, "api_key": Secret, "apiKey": Secret, "APIKey": Secret,
		"access_token": Secret, "client_secret": Secret, "address": Address, "billing_address": Address,
		"street": Address, "first_name": Name, "lastName": Name, "fullname": Name, "surname": Name,
		"ip_address": IPAddress, "ip": IPAddress, "client_ip": IPAddress,

		"email_verified": "", "has_email": "", "token_count": "", "token_type": "", "tokens_used": "",
		"address_id": "", "mac_address": "", "name": "", "username": "", "company": "", "span": "",
		"id": "", "created_at": "", "zip_count": "", "description": "", "emails_sent": "", "mobile_app_version": "",
		"next_page_token": "", "shipping": "", "panel": "", "tip": "",
		// everyday schema columns: precision for names too
		"product_name": "", "company_name": "", "file_name": "", "host_name": "", "table_name": "", "account_name": "",
		"order_id": "", "user_id": "", "customer_id": "", "amount": "", "currency": "", "quantity": "", "title": "",
		"sku": "", "updated_at": "", "deleted_at": "", "status": "", "type": "", "country": "", "timezone": "",
		"locale": "", "version": "", "is_mobile": "", "phone_country_code": "", "email_domain": "", "api_key_id": "",
		"token_expires_at": "", "password_changed_at": "", "password_reset_required": "", "address_verified": "",
		"birth_date_verified": "", "ip_range": "", "session_id": "", "hotel": "", "zip": "", "key": "", "hash": "",
		"email_opt_in": "", "phone_type": "", "wallet_address": "", "server_address": "", "email_template": "",
	}
	for name, want := range cases {
		assert.Equal(t, want, e.ClassifyColumn(name), name)
	}

	ext, err := New(&Config{Classes: []ClassConfig{{Name: "employee_id", Columns: []string{"badge number"}}, {Name: "email", Columns: []string{"contact"}}}})
	require.NoError(t, err)
	assert.Equal(t, Class("employee_id"), ext.ClassifyColumn("badgeNumber"))
	assert.Equal(t, Class("employee_id"), ext.ClassifyColumn("badgenumber"))
	assert.Equal(t, Email, ext.ClassifyColumn("primary_contact"))
	assert.Equal(t, Class(""), ext.ClassifyColumn("badge_id_number"))
}
