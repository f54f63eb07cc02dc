package sigv4

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseAuthorization(t *testing.T) {
	const cred = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
	good := []struct {
		in, ak string
		signed []string
	}{
		{"AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host;x-amz-date,Signature=abc", testAK, []string{"host", "x-amz-date"}},
		{"AWS4-HMAC-SHA256   " + cred + " ,  SignedHeaders = Host;X-Amz-Date ,Signature= abc ", testAK, []string{"host", "x-amz-date"}},
		{"AWS4-HMAC-SHA256 Signature=abc, SignedHeaders=host, " + cred, testAK, []string{"host"}},
		{"AWS4-HMAC-SHA256 Credential=key/with/slashes/20130524/eu-west-3/s3/aws4_request, SignedHeaders=host, Signature=abc", "key/with/slashes", []string{"host"}},
	}
	for _, tc := range good {
		a, err := ParseAuthorization(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if a.Credential.AccessKeyID != tc.ak || strings.Join(a.SignedHeaders, ";") != strings.Join(tc.signed, ";") || a.Signature != "abc" {
			t.Fatalf("%q: %+v", tc.in, a)
		}
	}

	bad := []struct{ in, code, msg string }{
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host", "AuthorizationHeaderMalformed",
			"The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature."},
		{"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3, SignedHeaders=host, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`},
		{"AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`},
		{"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; incorrect service "ec2". This endpoint belongs to "s3".`},
		{"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_reques, SignedHeaders=host, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; incorrect terminal "aws4_reques". This endpoint uses "aws4_request".`},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the authorization component "SignedHeaders" is malformed.`},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;date, Signature=abc", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the authorization component "SignedHeaders=host;;date" is malformed.`},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=abc, Extra=1", "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the authorization component "Extra=1" is malformed.`},
		{"AWS4-HMAC-SHA256", "InvalidArgument", "Unsupported Authorization Type"},
		{"AWS4-HMAC-SHA256" + cred, "InvalidArgument", "Unsupported Authorization Type"},
		{"AWS4-ECDSA-P256-SHA256 " + cred, "InvalidArgument", "Unsupported Authorization Type"},
	}
	for _, tc := range bad {
		_, err := ParseAuthorization(tc.in)
		se := asS3(t, err, tc.code)
		if se.Message != tc.msg {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, se.Message, tc.msg)
		}
	}
}

func TestParsePresignedQuery(t *testing.T) {
	base := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
		"X-Amz-Date":          {"20130524T000000Z"},
		"X-Amz-Expires":       {"86400"},
		"X-Amz-SignedHeaders": {"host"},
		"X-Amz-Signature":     {"abc"},
	}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		if v == "" {
			delete(q, k)
		} else {
			q.Set(k, v)
		}
		return q
	}
	pq, err := ParsePresignedQuery(base)
	if err != nil || pq.Expires != 24*time.Hour || pq.RawDate != "20130524T000000Z" || !pq.Date.Equal(docTime) {
		t.Fatalf("%+v %v", pq, err)
	}
	for _, e := range []string{"0", "604800"} {
		if _, err := ParsePresignedQuery(with("X-Amz-Expires", e)); err != nil {
			t.Fatalf("X-Amz-Expires=%s: %v", e, err)
		}
	}

	missing := "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
	cases := []struct{ k, v, msg string }{
		{"X-Amz-Algorithm", "", missing},
		{"X-Amz-Credential", "", missing},
		{"X-Amz-Date", "", missing},
		{"X-Amz-Expires", "", missing},
		{"X-Amz-SignedHeaders", "", missing},
		{"X-Amz-Signature", "", missing},
		{"X-Amz-Algorithm", "AWS4-HMAC-SHA1", `X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`},
		{"X-Amz-Expires", "abc", "X-Amz-Expires should be a number"},
		{"X-Amz-Expires", "1.5", "X-Amz-Expires should be a number"},
		{"X-Amz-Expires", "-1", "X-Amz-Expires must be non-negative"},
		{"X-Amz-Expires", "604801", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"},
		{"X-Amz-Expires", "99999999999999999999999", "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds"},
		{"X-Amz-Date", "2013-05-24T00:00:00Z", `X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`},
		{"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request",
			`Error parsing the X-Amz-Credential parameter; Invalid credential date "20130525". This date is not the same as X-Amz-Date: "20130524".`},
		{"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/iam/aws4_request",
			`Error parsing the X-Amz-Credential parameter; incorrect service "iam". This endpoint belongs to "s3".`},
		{"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE", `Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`},
	}
	for _, tc := range cases {
		_, err := ParsePresignedQuery(with(tc.k, tc.v))
		se := asS3(t, err, "AuthorizationQueryParametersError")
		if se.Status != 400 || se.Message != tc.msg {
			t.Errorf("%s=%q:\n got %d %q\nwant %q", tc.k, tc.v, se.Status, se.Message, tc.msg)
		}
	}
}

// handSigned builds a header-signed request from a canonical request
// written out in full by the test, so that what is verified does not come
// from the code under test.
func handSigned(t *testing.T, method, target, host string, headers map[string]string, signedHeaders, canonical string, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = host
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	scope := at.Format("20060102") + "/us-east-1/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + at.Format(iso8601Basic) + "\n" + scope + "\n" + sha256Hex([]byte(canonical))
	sig := signHex(SigningKey(testSecret, at.Format("20060102"), testRegion, "s3"), sts)
	r.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", testAK, scope, signedHeaders, sig))
	return r
}

func TestVerifyHeaderV4Checks(t *testing.T) {
	at := time.Date(2031, 7, 1, 10, 0, 0, 0, time.UTC)
	v := NewVerifier(testLookup, Options{Now: func() time.Time { return at.Add(time.Minute) }})
	date := at.Format(http.TimeFormat)

	t.Run("Date header instead of X-Amz-Date", func(t *testing.T) {
		r := handSigned(t, "GET", "/b/k", "h.example",
			map[string]string{"Date": date, "X-Amz-Content-Sha256": emptySHA256},
			"date;host;x-amz-content-sha256",
			"GET\n/b/k\n\ndate:"+date+"\nhost:h.example\nx-amz-content-sha256:"+emptySHA256+"\n\ndate;host;x-amz-content-sha256\n"+emptySHA256, at)
		a, err := v.Verify(r)
		if err != nil || !a.Date.Equal(at) {
			t.Fatalf("%+v %v", a, err)
		}
	})
	t.Run("unsigned Date header", func(t *testing.T) {
		r := handSigned(t, "GET", "/b/k", "h.example",
			map[string]string{"Date": date, "X-Amz-Content-Sha256": emptySHA256},
			"host;x-amz-content-sha256",
			"GET\n/b/k\n\nhost:h.example\nx-amz-content-sha256:"+emptySHA256+"\n\nhost;x-amz-content-sha256\n"+emptySHA256, at)
		_, err := v.Verify(r)
		se := asS3(t, err, "AccessDenied")
		if f, _ := field(se, "HeadersNotSigned"); f != "date" {
			t.Fatalf("%v", se.Fields)
		}
	})
	t.Run("unsigned host", func(t *testing.T) {
		amz := at.Format(iso8601Basic)
		r := handSigned(t, "GET", "/b/k", "h.example",
			map[string]string{"X-Amz-Date": amz, "X-Amz-Content-Sha256": emptySHA256},
			"x-amz-content-sha256;x-amz-date",
			"GET\n/b/k\n\nx-amz-content-sha256:"+emptySHA256+"\nx-amz-date:"+amz+"\n\nx-amz-content-sha256;x-amz-date\n"+emptySHA256, at)
		_, err := v.Verify(r)
		se := asS3(t, err, "AccessDenied")
		if f, _ := field(se, "HeadersNotSigned"); f != "host" {
			t.Fatalf("%v", se.Fields)
		}
	})
	t.Run("signed header absent from the request", func(t *testing.T) {
		amz := at.Format(iso8601Basic)
		r := handSigned(t, "GET", "/b/k", "h.example",
			map[string]string{"X-Amz-Date": amz, "X-Amz-Content-Sha256": emptySHA256},
			"host;range;x-amz-content-sha256;x-amz-date",
			"GET\n/b/k\n\nhost:h.example\nrange:bytes=0-1\nx-amz-content-sha256:"+emptySHA256+"\nx-amz-date:"+amz+"\n\nhost;range;x-amz-content-sha256;x-amz-date\n"+emptySHA256, at)
		_, err := v.Verify(r)
		se := asS3(t, err, "SignatureDoesNotMatch")
		if cr, _ := field(se, "CanonicalRequest"); !strings.Contains(cr, "\nrange:\n") {
			t.Fatalf("canonical request %q", cr)
		}
		r.Header.Set("Range", "bytes=0-1")
		if _, err := v.Verify(r); err != nil {
			t.Fatal(err)
		}
	})

	base := func() *http.Request {
		r := httptest.NewRequest("GET", "/b/k", nil)
		r.Header.Set("X-Amz-Date", at.Format(iso8601Basic))
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAK+"/"+at.Format("20060102")+"/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00")
		return r
	}
	cases := []struct {
		name   string
		mutate func(r *http.Request)
		code   string
		msg    string
	}{
		{"missing content sha", func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, "InvalidRequest",
			"Missing required header for this request: x-amz-content-sha256"},
		{"bad content sha", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "abc") }, "InvalidArgument",
			"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value."},
		{"no date", func(r *http.Request) { r.Header.Del("X-Amz-Date") }, "AccessDenied",
			"AWS authentication requires a valid Date or x-amz-date header"},
		{"bad date", func(r *http.Request) { r.Header.Set("X-Amz-Date", "2031-07-01") }, "AccessDenied",
			"AWS authentication requires a valid Date or x-amz-date header"},
		{"credential day", func(r *http.Request) { r.Header.Set("X-Amz-Date", at.Add(-24*time.Hour).Format(iso8601Basic)) }, "AuthorizationHeaderMalformed",
			`The authorization header is malformed; Invalid credential date "20310701". This date is not the same as X-Amz-Date: "20310630".`},
		{"unsupported", func(r *http.Request) { r.Header.Set("Authorization", "Bearer token") }, "InvalidArgument", "Unsupported Authorization Type"},
		{"unknown key", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testAK, "NOBODY", 1))
		}, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := base()
			tc.mutate(r)
			_, err := v.Verify(r)
			se := asS3(t, err, tc.code)
			if se.Message != tc.msg {
				t.Fatalf("message %q, want %q", se.Message, tc.msg)
			}
			if tc.name == "unsupported" {
				if f, _ := field(se, "ArgumentValue"); f != "Bearer token" {
					t.Fatalf("fields %v", se.Fields)
				}
			}
		})
	}
}

func TestAnonymous(t *testing.T) {
	v := NewVerifier(testLookup, Options{})
	r := httptest.NewRequest("GET", "/b/k?versionId=1", nil)
	a, err := v.Verify(r)
	if err != nil || a.Kind != Anonymous || a.Payload != PayloadNone || a.AccessKeyID != "" {
		t.Fatalf("%+v %v", a, err)
	}

	// A hash given without a signature is still honoured.
	body := []byte("anonymous upload")
	r = httptest.NewRequest("PUT", "/b/k", bytes.NewReader(body))
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("something else")))
	a, err = v.Verify(r)
	if err != nil || a.Payload != PayloadSHA256 {
		t.Fatalf("%+v %v", a, err)
	}
	p, _ := a.Body(r)
	_, err = io.ReadAll(p)
	asS3(t, err, "XAmzContentSHA256Mismatch")

	r = httptest.NewRequest("PUT", "/b/k", nil)
	r.Header.Set("X-Amz-Content-Sha256", streamingSigned)
	_, err = v.Verify(r)
	asS3(t, err, "InvalidRequest")

	// Any credential anywhere means it is checked.
	for _, q := range []string{"X-Amz-Credential=x", "X-Amz-Signature=x", "X-Amz-Algorithm=x", "AWSAccessKeyId=x", "Signature=x"} {
		_, err := v.Verify(httptest.NewRequest("GET", "/b/k?"+q, nil))
		if err == nil {
			t.Fatalf("%s: accepted as anonymous", q)
		}
	}
}

func TestCanonicalURI(t *testing.T) {
	cases := map[string]string{
		"":                       "/",
		"/":                      "/",
		"/b/k":                   "/b/k",
		"/b/a%20b":               "/b/a%20b",
		"/b/a+b":                 "/b/a%2Bb",
		"/b/%7e%7E~":             "/b/~~~",
		"/b/a%2fb":               "/b/a%2Fb",
		"/b/../c//d/./":          "/b/../c//d/./",
		"/b/é":                   "/b/%C3%A9",
		"/b/%c3%a9":              "/b/%C3%A9",
		"/b/!$&'()*,;=:@":        "/b/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40",
		"/b/%zz":                 "/b/%25zz",
		"/b/k%20":                "/b/k%20",
		"/b/%41%42":              "/b/AB",
		"//double//slashes//":    "//double//slashes//",
		"/b/a%252Fb":             "/b/a%252Fb",
		"/b/unicode-%E2%98%83/x": "/b/unicode-%E2%98%83/x",
	}
	for in, want := range cases {
		if got := canonicalURI(in); got != want {
			t.Errorf("canonicalURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	cases := []struct {
		in     string
		drop   bool
		expect string
	}{
		{"", false, ""},
		{"b=2&a=1&a=0", false, "a=0&a=1&b=2"},
		{"uploads", false, "uploads="},
		{"acl=&versionId=3", false, "acl=&versionId=3"},
		{"a=b+c", false, "a=b%20c"},
		{"a=b%2Bc", false, "a=b%2Bc"},
		{"k=%7e", false, "k=~"},
		{"a=%2f&A=1", false, "A=1&a=%2F"},
		{"&&a=1&", false, "a=1"},
		{"prefix=%E2%98%83&delimiter=/", false, "delimiter=%2F&prefix=%E2%98%83"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", true, "X-Amz-Date=1"},
		{"X-Amz-Signature=abc&X-Amz-Date=1", false, "X-Amz-Date=1&X-Amz-Signature=abc"},
		{"a=%zz", false, "a=%25zz"},
		{"x-amz-checksum-crc32=AAAAAA%3D%3D&x-amz-sdk-checksum-algorithm=CRC32", true, "x-amz-checksum-crc32=AAAAAA%3D%3D&x-amz-sdk-checksum-algorithm=CRC32"},
	}
	// Beyond the stack-sized fast path the order must be the same.
	var long, sorted []string
	for i := 99; i >= 0; i-- {
		long = append(long, fmt.Sprintf("k%02d=%03d", i%50, i))
	}
	for i := range 100 {
		sorted = append(sorted, fmt.Sprintf("k%02d=%03d", i/2, i/2+50*(i%2)))
	}
	cases = append(cases, struct {
		in     string
		drop   bool
		expect string
	}{strings.Join(long, "&"), false, strings.Join(sorted, "&")})
	for _, tc := range cases {
		if got := canonicalQuery(tc.in, tc.drop); got != tc.expect {
			t.Errorf("canonicalQuery(%q, %v) = %q, want %q", tc.in, tc.drop, got, tc.expect)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	if got := string(appendTrimmed(nil, " \t a   b  c \t")); got != "a b c" {
		t.Fatalf("appendTrimmed: %q", got)
	}
	if hexBytes("AB\n") != "41 42 0a" || hexBytes("") != "" {
		t.Fatal("hexBytes")
	}
	for k, want := range map[Kind]string{Anonymous: "anonymous", HeaderV4: "header", PresignedV4: "presigned", PresignedV2: "presigned-v2", HeaderV2: "header-v2", PostPolicyV4: "post-policy", PostPolicyV2: "post-policy-v2"} {
		if k.String() != want {
			t.Fatalf("%d: %s", k, k.String())
		}
	}
}

func TestKeyCache(t *testing.T) {
	c := newKeyCache(4)
	for i := range 50 {
		date := fmt.Sprintf("2030%04d", i)
		if got, want := c.get(testSecret, date, testRegion, "s3").key, SigningKey(testSecret, date, testRegion, "s3"); !bytes.Equal(got, want) {
			t.Fatalf("key %d differs", i)
		}
		if n := c.len(); n > 8 {
			t.Fatalf("cache holds %d keys, bound is 8", n)
		}
	}
	// A rotated secret never gets the old key.
	if bytes.Equal(c.get("new-secret", "20300049", testRegion, "s3").key, c.get(testSecret, "20300049", testRegion, "s3").key) {
		t.Fatal("secret not part of the cache key")
	}

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				date := fmt.Sprintf("2040%04d", (g+i)%6)
				k := c.get(testSecret, date, "r", "s3")
				if !bytes.Equal(k.key, SigningKey(testSecret, date, "r", "s3")) ||
					!k.matchesString("data", signHex(k.key, "data")) {
					t.Error("wrong key under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLookupWithoutFunction(t *testing.T) {
	v := NewVerifier(nil, Options{})
	_, err := v.lookupSecret(context.Background(), "x")
	asS3(t, err, "InvalidAccessKeyId")
}
