package cors

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"nfyio.dev/storage/internal/s3err"
)

func doc(rules ...string) string {
	return `<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + strings.Join(rules, "") + `</CORSConfiguration>`
}

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestParseValid(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<!-- comments are fine -->
<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <ID>site</ID>
    <AllowedOrigin>https://*.example.com</AllowedOrigin>
    <AllowedOrigin>http://localhost:3000</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedHeader>x-amz-*</AllowedHeader>
    <AllowedHeader>content-type</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <ExposeHeader>x-amz-version-id</ExposeHeader>
    <MaxAgeSeconds> 600 </MaxAgeSeconds>
  </CORSRule>
  <CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule>
</CORSConfiguration>`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{Rules: []Rule{
		{ID: "site", AllowedOrigins: []string{"https://*.example.com", "http://localhost:3000"},
			AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"x-amz-*", "content-type"},
			ExposeHeaders: []string{"ETag", "x-amz-version-id"}, MaxAgeSeconds: 600},
		{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"HEAD"}, MaxAgeSeconds: -1},
	}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", c, want)
	}
	// The stored form parses back to the same rules.
	again, err := Parse(c.Marshal())
	if err != nil {
		t.Fatalf("marshalled document does not parse: %v\n%s", err, c.Marshal())
	}
	if !reflect.DeepEqual(again, want) {
		t.Fatalf("round trip\n%+v\nwant\n%+v", again, want)
	}
	// A document without the namespace is accepted, as S3 does.
	if _, err := Parse([]byte(`<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`)); err != nil {
		t.Fatal(err)
	}
}

func TestParseInvalid(t *testing.T) {
	rule := func(inner string) string { return "<CORSRule>" + inner + "</CORSRule>" }
	ok := "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
	many := strings.Repeat(rule(ok), MaxRules+1)
	cases := []struct {
		name, doc, code, msg string
	}{
		{"empty body", "", "MalformedXML", ""},
		{"no rules", doc(), "MalformedXML", ""},
		{"not xml", "{}", "MalformedXML", ""},
		{"wrong root", `<CORS>` + rule(ok) + `</CORS>`, "MalformedXML", ""},
		{"wrong namespace", `<CORSConfiguration xmlns="urn:x">` + rule(ok) + `</CORSConfiguration>`, "MalformedXML", ""},
		{"unknown element", doc(rule(ok + "<Foo>x</Foo>")), "MalformedXML", ""},
		{"unknown top element", doc(rule(ok), "<Other/>"), "MalformedXML", ""},
		{"nested markup", doc(rule("<AllowedOrigin><b>x</b></AllowedOrigin><AllowedMethod>GET</AllowedMethod>")), "MalformedXML", ""},
		{"no origin", doc(rule("<AllowedMethod>GET</AllowedMethod>")), "MalformedXML", ""},
		{"empty origin", doc(rule("<AllowedOrigin></AllowedOrigin><AllowedMethod>GET</AllowedMethod>")), "MalformedXML", ""},
		{"no method", doc(rule("<AllowedOrigin>*</AllowedOrigin>")), "MalformedXML", ""},
		{"too many rules", doc(many), "MalformedXML", ""},
		{"bad max age", doc(rule(ok + "<MaxAgeSeconds>soon</MaxAgeSeconds>")), "MalformedXML", ""},
		{"negative max age", doc(rule(ok + "<MaxAgeSeconds>-1</MaxAgeSeconds>")), "MalformedXML", ""},
		{"two max ages", doc(rule(ok + "<MaxAgeSeconds>1</MaxAgeSeconds><MaxAgeSeconds>2</MaxAgeSeconds>")), "MalformedXML", ""},
		{"trailing element", doc(rule(ok)) + "<x/>", "MalformedXML", ""},
		{"unclosed", `<CORSConfiguration>` + rule(ok), "MalformedXML", ""},
		{"doctype", `<!DOCTYPE x [<!ENTITY a "b">]>` + doc(rule(ok)), "MalformedXML", ""},
		{"text in rule", doc(rule(ok + "stray")), "MalformedXML", ""},
		{"method", doc(rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>")),
			"InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH"},
		{"method case", doc(rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>")),
			"InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is get"},
		{"two origin wildcards", doc(rule("<AllowedOrigin>https://*.*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")),
			"InvalidRequest", `AllowedOrigin "https://*.*.example.com" can not have more than one wildcard.`},
		{"two header wildcards", doc(rule(ok + "<AllowedHeader>x-*-*</AllowedHeader>")),
			"InvalidRequest", `AllowedHeader "x-*-*" can not have more than one wildcard.`},
		{"header character", doc(rule(ok + "<AllowedHeader>a b</AllowedHeader>")),
			"InvalidRequest", `AllowedHeader "a b" contains invalid character.`},
		{"expose wildcard", doc(rule(ok + "<ExposeHeader>x-amz-meta-*</ExposeHeader>")),
			"InvalidRequest", `ExposeHeader "x-amz-meta-*" contains wildcard. We currently do not support wildcard for ExposeHeader.`},
		{"expose character", doc(rule(ok + "<ExposeHeader>a:b</ExposeHeader>")),
			"InvalidRequest", `ExposeHeader "a:b" contains invalid character.`},
		{"origin control character", doc(rule("<AllowedOrigin>a&#10;b</AllowedOrigin><AllowedMethod>GET</AllowedMethod>")),
			"InvalidRequest", "AllowedOrigin \"a\nb\" contains invalid character."},
		{"long id", doc(rule(ok + "<ID>" + strings.Repeat("i", 256) + "</ID>")), "InvalidArgument", ""},
		{"too large", doc(rule(ok + strings.Repeat("<AllowedHeader>x</AllowedHeader>", MaxDocumentSize/30))), "MaxMessageLengthExceeded", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if code(err) != tc.code {
				t.Fatalf("error %v, want code %s", err, tc.code)
			}
			if tc.msg != "" && s3err.As(err).Message != tc.msg {
				t.Fatalf("message %q, want %q", s3err.As(err).Message, tc.msg)
			}
		})
	}
}

func mustParse(t *testing.T, d string) *Config {
	t.Helper()
	c, err := Parse([]byte(d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMatch(t *testing.T) {
	c := mustParse(t, doc(
		`<CORSRule><ID>app</ID><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedOrigin>https://*.staging.example.com</AllowedOrigin>
		 <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>
		 <AllowedHeader>content-type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader></CORSRule>`,
		`<CORSRule><ID>upload</ID><AllowedOrigin>https://app.example.com</AllowedOrigin><AllowedMethod>POST</AllowedMethod><AllowedHeader>*</AllowedHeader></CORSRule>`,
		`<CORSRule><ID>public</ID><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod><AllowedMethod>GET</AllowedMethod></CORSRule>`,
	))
	cases := []struct {
		origin, method string
		headers        []string
		rule, allow    string // rule "" means no match
	}{
		{"https://app.example.com", "GET", nil, "app", "https://app.example.com"},
		{"https://app.example.com", "PUT", []string{"content-type", "x-amz-meta-name"}, "app", "https://app.example.com"},
		{"HTTPS://APP.EXAMPLE.COM", "PUT", nil, "app", "HTTPS://APP.EXAMPLE.COM"},
		{"https://app.example.com", "PUT", []string{"authorization"}, "", ""},
		{"https://app.example.com", "POST", []string{"authorization", "x-anything"}, "upload", "https://app.example.com"},
		{"https://app.example.com", "DELETE", nil, "", ""},
		{"https://pr-42.staging.example.com", "PUT", []string{"x-amz-date"}, "app", "https://pr-42.staging.example.com"},
		{"https://.staging.example.com", "GET", nil, "app", "https://.staging.example.com"},
		{"https://staging.example.com", "PUT", nil, "", ""},
		{"https://evil.com", "PUT", nil, "", ""},
		// Later rules are reached when earlier ones do not match.
		{"https://other.org", "GET", nil, "public", "*"},
		{"null", "HEAD", nil, "public", "*"},
		{"https://other.org", "GET", []string{"content-type"}, "", ""},
		{"https://other.org", "PUT", nil, "", ""},
		{"https://app.example.com", "get", nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %s %v", tc.origin, tc.method, tc.headers), func(t *testing.T) {
			m, ok := c.Preflight(tc.origin, tc.method, tc.headers)
			if tc.rule == "" {
				if ok {
					t.Fatalf("matched rule %q, want none", m.Rule.ID)
				}
				return
			}
			if !ok {
				t.Fatalf("no match, want rule %q", tc.rule)
			}
			if m.Rule.ID != tc.rule || m.AllowOrigin != tc.allow {
				t.Fatalf("rule %q allow %q, want %q %q", m.Rule.ID, m.AllowOrigin, tc.rule, tc.allow)
			}
		})
	}
	// Actual requests are not checked against headers.
	if m, ok := c.Actual("https://app.example.com", "PUT"); !ok || m.Rule.ID != "app" {
		t.Fatalf("actual PUT: %v %+v", ok, m)
	}
	var none *Config
	if _, ok := none.Preflight("https://a", "GET", nil); ok {
		t.Fatal("nil config matched")
	}
}

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"a*", "a", true},
		{"a*c", "ac", true},
		{"a*c", "abc", true},
		{"a*c", "abcd", false},
		{"abc*abc", "abc", false},
		{"abc*abc", "abcabc", true},
		{"x-amz-*", "X-Amz-Date", true},
		{"plain", "plain", true},
		{"plain", "plainer", false},
	}
	for _, tc := range cases {
		if got := wildcardMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

func TestSetHeaders(t *testing.T) {
	c := mustParse(t, doc(
		`<CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>x-amz-version-id</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>`,
		`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod><ExposeHeader>ETag</ExposeHeader></CORSRule>`,
	))
	m, ok := c.Preflight("https://app.example.com", "PUT", RequestHeaders("Content-Type, X-Amz-Meta-Name,,"))
	if !ok {
		t.Fatal("no match")
	}
	h := http.Header{}
	m.SetHeaders(h, RequestHeaders("Content-Type, X-Amz-Meta-Name,,"))
	want := http.Header{
		"Access-Control-Allow-Origin":      {"https://app.example.com"},
		"Access-Control-Allow-Credentials": {"true"},
		"Access-Control-Allow-Methods":     {"GET, PUT"},
		"Access-Control-Allow-Headers":     {"content-type, x-amz-meta-name"},
		"Access-Control-Expose-Headers":    {"ETag, x-amz-version-id"},
		"Access-Control-Max-Age":           {"600"},
		"Vary":                             {Vary},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("headers\n%v\nwant\n%v", h, want)
	}

	m, ok = c.Actual("https://other.org", "HEAD")
	if !ok {
		t.Fatal("no match")
	}
	h = http.Header{}
	m.SetHeaders(h, nil)
	want = http.Header{
		"Access-Control-Allow-Origin":   {"*"},
		"Access-Control-Allow-Methods":  {"HEAD"},
		"Access-Control-Expose-Headers": {"ETag"},
		"Vary":                          {Vary},
	}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("headers\n%v\nwant\n%v", h, want)
	}
}

func TestDefault(t *testing.T) {
	if Default(nil) != nil {
		t.Fatal("Default(nil) is not nil")
	}
	c := Default([]string{"http://localhost:*", "https://app.example.com"})
	if err := c.Validate(); err != nil {
		t.Fatalf("default rule does not validate: %v", err)
	}
	for _, m := range Methods {
		if _, ok := c.Preflight("http://localhost:5173", m, []string{"authorization", "x-amz-date", "content-type"}); !ok {
			t.Errorf("default rule refuses %s", m)
		}
	}
	if _, ok := c.Preflight("https://evil.example.com", "GET", nil); ok {
		t.Error("default rule allows an origin it does not list")
	}
	if err := ValidateOrigin("https://*.*.x"); code(err) != "InvalidRequest" {
		t.Errorf("ValidateOrigin two wildcards: %v", err)
	}
	if err := ValidateOrigin("*"); err != nil {
		t.Errorf("ValidateOrigin(*): %v", err)
	}
}

func BenchmarkPreflight(b *testing.B) {
	var rules []string
	for i := range 50 {
		rules = append(rules, fmt.Sprintf(`<CORSRule><AllowedOrigin>https://app%d.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><AllowedHeader>content-type</AllowedHeader></CORSRule>`, i))
	}
	c, err := Parse([]byte(doc(rules...)))
	if err != nil {
		b.Fatal(err)
	}
	hdrs := RequestHeaders("content-type, x-amz-date, x-amz-content-sha256")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Preflight("https://app49.example.com", "PUT", hdrs); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	d := []byte(doc(`<CORSRule><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(d); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCORSConfig checks that any document either fails with an S3 error
// or yields a valid configuration whose stored form parses back to the
// same rules, and that matching never panics.
func FuzzCORSConfig(f *testing.F) {
	f.Add([]byte(doc(`<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>`)), "https://a.example", "GET", "content-type")
	f.Fuzz(func(t *testing.T, d []byte, origin, method, headers string) {
		c, err := Parse(d)
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) {
				t.Fatalf("error is not an S3 error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config does not validate: %v", err)
		}
		again, err := Parse(c.Marshal())
		if err != nil {
			t.Fatalf("marshalled config does not parse: %v\n%s", err, c.Marshal())
		}
		if !reflect.DeepEqual(normalize(c), normalize(again)) {
			t.Fatalf("round trip changed the rules:\n%+v\n%+v", c, again)
		}
		if m, ok := c.Preflight(origin, method, RequestHeaders(headers)); ok {
			h := http.Header{}
			m.SetHeaders(h, RequestHeaders(headers))
			if h.Get("Access-Control-Allow-Origin") == "" {
				t.Fatal("match without Access-Control-Allow-Origin")
			}
		}
	})
}

// normalize makes nil and empty slices equal for comparison.
func normalize(c *Config) *Config {
	out := &Config{}
	for _, r := range c.Rules {
		n := Rule{ID: r.ID, MaxAgeSeconds: r.MaxAgeSeconds}
		n.AllowedOrigins = append([]string{}, r.AllowedOrigins...)
		n.AllowedMethods = append([]string{}, r.AllowedMethods...)
		n.AllowedHeaders = append([]string{}, r.AllowedHeaders...)
		n.ExposeHeaders = append([]string{}, r.ExposeHeaders...)
		out.Rules = append(out.Rules, n)
	}
	return out
}
