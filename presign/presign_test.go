package presign

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	s := &Signer{Endpoint: "http://127.0.0.1:9000", Credentials: testCreds, Now: func() time.Time {
		return fixedTime.Add(700 * time.Millisecond)
	}}
	u, err := s.Presign("b", "k", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Method != http.MethodGet {
		t.Errorf("method %q, want GET", u.Method)
	}
	if len(u.Headers) != 0 {
		t.Errorf("headers %v, want none", u.Headers)
	}
	// Sub-second parts of the clock are dropped, as X-Amz-Date drops them.
	if want := fixedTime.Add(DefaultExpires); !u.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", u.Expires, want)
	}
	q := mustQuery(t, u.URL)
	for k, want := range map[string]string{
		"X-Amz-Expires":       "3600",
		"X-Amz-Date":          "20240229T235958Z",
		"X-Amz-Credential":    "AKIDEXAMPLE/20240229/us-east-1/s3/aws4_request",
		"X-Amz-SignedHeaders": "host",
		"X-Amz-Algorithm":     "AWS4-HMAC-SHA256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if q.Has("X-Amz-Security-Token") || q.Has(OnceParam) {
		t.Errorf("unexpected parameters in %s", u.URL)
	}
}

func TestExpiresWholeSeconds(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	u, err := s.Presign("b", "k", Options{Expires: 90*time.Second + 900*time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustQuery(t, u.URL).Get("X-Amz-Expires"); got != "90" {
		t.Errorf("X-Amz-Expires = %s, want 90", got)
	}
	if want := fixedTime.Add(90 * time.Second); !u.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", u.Expires, want)
	}
}

func TestOnce(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	tokenRE := regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	seen := map[string]bool{}
	for range 3 {
		u, err := s.Presign("b", "k", Options{Once: true})
		if err != nil {
			t.Fatal(err)
		}
		tok := mustQuery(t, u.URL).Get(OnceParam)
		if !tokenRE.MatchString(tok) {
			t.Fatalf("token %q is not 128 bits of unpadded base64url", tok)
		}
		if seen[tok] {
			t.Fatalf("token %q repeated", tok)
		}
		seen[tok] = true
		// The token is covered by the signature.
		verifyQuerySignature(t, u, testCreds.SecretAccessKey)
	}

	// With a fixed random source the token is the base64url of its bytes.
	s.rand = bytes.NewReader(bytes.Repeat([]byte{0xfb}, 16))
	u, err := s.Presign("b", "k", Options{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	if tok := mustQuery(t, u.URL).Get(OnceParam); tok != "-_v7-_v7-_v7-_v7-_v7-w" {
		t.Errorf("token %q", tok)
	}
	// An exhausted random source is an error, never a predictable token.
	if _, err := s.Presign("b", "k", Options{Once: true}); err == nil {
		t.Error("presign with an empty random source succeeded")
	}
}

func TestSignatureIndependently(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	s.Credentials.SessionToken = "tok/en+="
	u, err := s.Presign("bkt", "dir/ü x+y.txt", Options{
		Method: "PUT", ContentType: "text/plain", ContentLength: 3, Metadata: map[string]string{"K": " v  v "},
		Headers: http.Header{"X-Amz-Acl": {"private"}}, Once: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "content-length;content-type;host;x-amz-acl;x-amz-meta-k"; mustQuery(t, u.URL).Get("X-Amz-SignedHeaders") != want {
		t.Errorf("signed headers %q, want %q", mustQuery(t, u.URL).Get("X-Amz-SignedHeaders"), want)
	}
	verifyQuerySignature(t, u, testCreds.SecretAccessKey)
}

func TestPresignUploadPart(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	u, err := s.PresignUploadPart("b", "k", "up-1", 7, Options{ContentLength: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, u.URL)
	if u.Method != http.MethodPut || q.Get("partNumber") != "7" || q.Get("uploadId") != "up-1" {
		t.Errorf("got %s %s", u.Method, u.URL)
	}
	if u.Headers.Get("Content-Length") != "5242880" {
		t.Errorf("headers %v", u.Headers)
	}
	verifyQuerySignature(t, u, testCreds.SecretAccessKey)

	for _, bad := range []struct {
		id   string
		part int
		o    Options
	}{
		{"", 1, Options{}},
		{"u", 0, Options{}},
		{"u", 10001, Options{}},
		{"u", 1, Options{Method: "GET"}},
		{"u", 1, Options{Query: url.Values{"partnumber": {"2"}}}},
	} {
		if _, err := s.PresignUploadPart("b", "k", bad.id, bad.part, bad.o); err == nil {
			t.Errorf("PresignUploadPart(%q, %d, %+v) succeeded", bad.id, bad.part, bad.o)
		}
	}
}

func TestPresignRejects(t *testing.T) {
	good := func() *Signer { return testSigner("http://127.0.0.1:9000") }
	cases := []struct {
		name   string
		signer func(*Signer)
		bucket string
		key    string
		o      Options
	}{
		{name: "expiry too long", o: Options{Expires: MaxExpires + time.Second}},
		{name: "expiry too short", o: Options{Expires: 999 * time.Millisecond}},
		{name: "negative expiry", o: Options{Expires: -time.Minute}},
		{name: "method", o: Options{Method: "PATCH"}},
		{name: "no secret", signer: func(s *Signer) { s.Credentials.SecretAccessKey = "" }},
		{name: "no access key", signer: func(s *Signer) { s.Credentials.AccessKeyID = "" }},
		{name: "slash in access key", signer: func(s *Signer) { s.Credentials.AccessKeyID = "a/b" }},
		{name: "slash in region", signer: func(s *Signer) { s.Region = "us/east" }},
		{name: "no endpoint", signer: func(s *Signer) { s.Endpoint = "" }},
		{name: "endpoint without scheme", signer: func(s *Signer) { s.Endpoint = "127.0.0.1:9000" }},
		{name: "ftp endpoint", signer: func(s *Signer) { s.Endpoint = "ftp://example.com" }},
		{name: "endpoint with query", signer: func(s *Signer) { s.Endpoint = "http://example.com/?a=b" }},
		{name: "endpoint with user", signer: func(s *Signer) { s.Endpoint = "http://u:p@example.com" }},
		{name: "empty bucket", bucket: "-"},
		{name: "slash in bucket", bucket: "a/b"},
		{name: "key too long", key: strings.Repeat("k", MaxKeyLength+1)},
		{name: "key not utf-8", key: "a\xffb"},
		{name: "content type on GET", o: Options{ContentType: "text/plain"}},
		{name: "content length on DELETE", o: Options{Method: "DELETE", ContentLength: 3}},
		{name: "negative length", o: Options{Method: "PUT", ContentLength: -1}},
		{name: "bad md5", o: Options{Method: "PUT", ContentMD5: "abc"}},
		{name: "md5 wrong size", o: Options{Method: "PUT", ContentMD5: base64.StdEncoding.EncodeToString([]byte("short"))}},
		{name: "override on PUT", o: Options{Method: "PUT", ResponseContentType: "text/plain"}},
		{name: "override twice", o: Options{ResponseContentType: "a", Query: url.Values{"response-content-type": {"b"}}}},
		{name: "reserved query", o: Options{Query: url.Values{"x-amz-expires": {"5"}}}},
		{name: "reserved once", o: Options{Query: url.Values{OnceParam: {"5"}}}},
		{name: "host header", o: Options{Headers: http.Header{"Host": {"evil"}}}},
		{name: "authorization header", o: Options{Headers: http.Header{"Authorization": {"x"}}}},
		{name: "bad header name", o: Options{Headers: http.Header{"Bad Name": {"x"}}}},
		{name: "header injection", o: Options{Headers: http.Header{"X-Amz-Acl": {"private\r\nX-Evil: 1"}}}},
		{name: "header injection in later value", o: Options{Headers: http.Header{"X-A": {"ok", "bad\n"}}}},
		{name: "header twice", o: Options{Method: "PUT", ContentType: "a", Headers: http.Header{"Content-Type": {"b"}}}},
		{name: "metadata twice", o: Options{Metadata: map[string]string{"A": "1", "a": "2"}}},
		{name: "metadata empty name", o: Options{Metadata: map[string]string{"": "1"}}},
		{name: "metadata bad name", o: Options{Metadata: map[string]string{"a:b": "1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := good()
			if c.signer != nil {
				c.signer(s)
			}
			bucket, key := c.bucket, c.key
			if bucket == "" {
				bucket = "b"
			} else if bucket == "-" {
				bucket = ""
			}
			if key == "" {
				key = "k"
			}
			if u, err := s.Presign(bucket, key, c.o); err == nil {
				t.Errorf("succeeded: %s", u.URL)
			}
		})
	}
}

func TestBucketURL(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000/")
	u, err := s.Presign("b", "", Options{Query: url.Values{"list-type": {"2"}, "prefix": {"a/"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.URL, "http://127.0.0.1:9000/b?") {
		t.Errorf("bucket URL %s", u.URL)
	}
	verifyQuerySignature(t, u, testCreds.SecretAccessKey)

	s = testSigner("http://storage.example.com:9000")
	s.VirtualHosted = true
	u, err = s.Presign("b-1", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.URL, "http://b-1.storage.example.com:9000/?") {
		t.Errorf("virtual-hosted bucket URL %s", u.URL)
	}
	verifyQuerySignature(t, u, testCreds.SecretAccessKey)
}

func TestConcurrentUse(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	want, err := s.Presign("b", "k", Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan string, 8)
	for range 8 {
		go func() {
			u, err := s.Presign("b", "k", Options{})
			if err != nil {
				errs <- err.Error()
				return
			}
			if u.URL != want.URL {
				errs <- u.URL
				return
			}
			errs <- ""
		}()
	}
	for range 8 {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// verifyQuerySignature checks u the way a server does, written from the
// SigV4 specification without the package's helpers: rebuild the canonical
// request from the URL as received and the headers the client will send.
func verifyQuerySignature(t *testing.T, u URL, secret string) {
	t.Helper()
	parsed, err := url.Parse(u.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	var pairs []string
	for k, vs := range q {
		if k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			pairs = append(pairs, specEncode(k)+"="+specEncode(v))
		}
	}
	sort.Strings(pairs)
	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	var canonHeaders strings.Builder
	for _, h := range signed {
		v := parsed.Host
		if h != "host" {
			v = strings.Join(u.Headers.Values(h), ",")
			v = strings.Join(strings.Fields(v), " ")
		}
		canonHeaders.WriteString(h + ":" + v + "\n")
	}
	canonical := strings.Join([]string{u.Method, parsed.EscapedPath(), strings.Join(pairs, "&"),
		canonHeaders.String(), q.Get("X-Amz-SignedHeaders"), "UNSIGNED-PAYLOAD"}, "\n")
	cred := strings.SplitN(q.Get("X-Amz-Credential"), "/", 2)
	scopeParts := strings.Split(cred[1], "/")
	sum := sha256.Sum256([]byte(canonical))
	sts := "AWS4-HMAC-SHA256\n" + q.Get("X-Amz-Date") + "\n" + cred[1] + "\n" + hex.EncodeToString(sum[:])
	key := []byte("AWS4" + secret)
	for _, part := range scopeParts {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(part))
		key = m.Sum(nil)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sts))
	if want := hex.EncodeToString(m.Sum(nil)); q.Get("X-Amz-Signature") != want {
		t.Errorf("signature %s, independently computed %s\ncanonical request:\n%s", q.Get("X-Amz-Signature"), want, canonical)
	}
}

// specEncode is RFC 3986 percent-encoding of everything but unreserved
// characters, per the SigV4 specification.
func specEncode(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

func BenchmarkPresignGet(b *testing.B) {
	s := &Signer{Endpoint: "https://storage.example.com", Credentials: testCreds}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Presign("photos", "2024/holiday/cat picture.jpg", Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPresignPut(b *testing.B) {
	s := &Signer{Endpoint: "https://storage.example.com", Credentials: testCreds}
	o := Options{Method: "PUT", ContentType: "image/jpeg", ContentLength: 1 << 20, Metadata: map[string]string{"owner": "u1"}, Once: true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Presign("photos", "2024/holiday/cat picture.jpg", o); err != nil {
			b.Fatal(err)
		}
	}
}
