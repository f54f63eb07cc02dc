package presign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// postSignature computes a POST policy signature from the specification:
// HMAC-SHA256 chain over date, region, "s3", "aws4_request", then over the
// base64 policy.
func postSignature(secret, date, region, policyB64 string) string {
	key := []byte("AWS4" + secret)
	for _, part := range []string{date, region, "s3", "aws4_request", policyB64} {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(part))
		key = m.Sum(nil)
	}
	return hex.EncodeToString(key)
}

type decodedPolicy struct {
	Expiration string `json:"expiration"`
	Conditions []any  `json:"conditions"`
}

func decodePolicy(t *testing.T, b64 string) decodedPolicy {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("policy is not base64: %v", err)
	}
	var p decodedPolicy
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("policy is not JSON: %v\n%s", err, raw)
	}
	return p
}

func TestPresignPost(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	s.Region = "eu-central-1"
	s.Credentials.SessionToken = "sess+tok/="
	post, err := s.PresignPost("uploads", PostOptions{
		Expires:               10 * time.Minute,
		Key:                   "user/42/${filename}",
		ContentType:           "image/png",
		ContentTypeStartsWith: "image/",
		MinSize:               1,
		MaxSize:               10 << 20,
		SuccessActionStatus:   201,
		SuccessActionRedirect: "https://app.example.com/done?x=<y>&z",
		Metadata:              map[string]string{"Zeta": "last", "alpha": "first"},
		Conditions: []any{
			map[string]string{"acl": "private"},
			[]any{"starts-with", "$Cache-Control", ""},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if post.URL != "http://127.0.0.1:9000/uploads" {
		t.Errorf("URL %s", post.URL)
	}
	if want := fixedTime.Add(10 * time.Minute); !post.Expires.Equal(want) {
		t.Errorf("expires %v, want %v", post.Expires, want)
	}
	wantFields := map[string]string{
		"key":                     "user/42/${filename}",
		"Content-Type":            "image/png",
		"success_action_status":   "201",
		"success_action_redirect": "https://app.example.com/done?x=<y>&z",
		"x-amz-meta-alpha":        "first",
		"x-amz-meta-zeta":         "last",
		"x-amz-algorithm":         "AWS4-HMAC-SHA256",
		"x-amz-credential":        "AKIDEXAMPLE/20240229/eu-central-1/s3/aws4_request",
		"x-amz-date":              "20240229T235958Z",
		"x-amz-security-token":    "sess+tok/=",
	}
	for k, v := range wantFields {
		if post.Fields[k] != v {
			t.Errorf("field %s = %q, want %q", k, post.Fields[k], v)
		}
	}
	if len(post.Fields) != len(wantFields)+2 {
		t.Errorf("fields %v: want exactly %d", post.Fields, len(wantFields)+2)
	}

	p := decodePolicy(t, post.Fields["policy"])
	if p.Expiration != "2024-03-01T00:09:58.000Z" {
		t.Errorf("expiration %q", p.Expiration)
	}
	want := []any{
		map[string]any{"bucket": "uploads"},
		[]any{"starts-with", "$key", "user/42/"},
		[]any{"starts-with", "$Content-Type", "image/"},
		[]any{"content-length-range", float64(1), float64(10 << 20)},
		map[string]any{"success_action_status": "201"},
		map[string]any{"success_action_redirect": "https://app.example.com/done?x=<y>&z"},
		map[string]any{"x-amz-meta-alpha": "first"},
		map[string]any{"x-amz-meta-zeta": "last"},
		map[string]any{"acl": "private"},
		[]any{"starts-with", "$Cache-Control", ""},
		map[string]any{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]any{"x-amz-credential": "AKIDEXAMPLE/20240229/eu-central-1/s3/aws4_request"},
		map[string]any{"x-amz-date": "20240229T235958Z"},
		map[string]any{"x-amz-security-token": "sess+tok/="},
	}
	if !reflect.DeepEqual(p.Conditions, want) {
		t.Errorf("conditions\n got %#v\nwant %#v", p.Conditions, want)
	}
	if got, want := post.Fields["x-amz-signature"], postSignature(testCreds.SecretAccessKey, "20240229", "eu-central-1", post.Fields["policy"]); got != want {
		t.Errorf("signature %s, independently computed %s", got, want)
	}

	// Same options, same policy: conditions do not depend on map order.
	again, err := s.PresignPost("uploads", PostOptions{
		Expires: 10 * time.Minute, Key: "user/42/${filename}", ContentType: "image/png", ContentTypeStartsWith: "image/",
		MinSize: 1, MaxSize: 10 << 20, SuccessActionStatus: 201,
		SuccessActionRedirect: "https://app.example.com/done?x=<y>&z",
		Metadata:              map[string]string{"alpha": "first", "Zeta": "last"},
		Conditions:            []any{map[string]string{"acl": "private"}, []any{"starts-with", "$Cache-Control", ""}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if again.Fields["policy"] != post.Fields["policy"] {
		t.Error("the same options gave a different policy")
	}
}

func TestPresignPostKeys(t *testing.T) {
	s := testSigner("https://storage.example.com")
	s.VirtualHosted = true
	cases := []struct {
		name      string
		o         PostOptions
		wantKey   string
		wantCond  any
		wantRange any // the condition after the key's
	}{
		{name: "exact", o: PostOptions{Key: "a/b c.txt"}, wantKey: "a/b c.txt",
			wantCond: map[string]any{"key": "a/b c.txt"}},
		{name: "prefix", o: PostOptions{KeyStartsWith: "in/"}, wantKey: "in/${filename}",
			wantCond: []any{"starts-with", "$key", "in/"}},
		{name: "key within prefix", o: PostOptions{Key: "in/x", KeyStartsWith: "in/"}, wantKey: "in/x",
			wantCond: []any{"starts-with", "$key", "in/"}},
		{name: "any key", o: PostOptions{}, wantKey: "${filename}",
			wantCond: []any{"starts-with", "$key", ""}},
		{name: "exact content type", o: PostOptions{Key: "k", ContentType: "text/csv"}, wantKey: "k",
			wantCond:  map[string]any{"key": "k"},
			wantRange: map[string]any{"Content-Type": "text/csv"}},
		{name: "min size only", o: PostOptions{Key: "k", MinSize: 5}, wantKey: "k",
			wantCond:  map[string]any{"key": "k"},
			wantRange: []any{"content-length-range", float64(5), float64(MaxPostSize)}},
		{name: "max size only", o: PostOptions{Key: "k", MaxSize: 5}, wantKey: "k",
			wantCond:  map[string]any{"key": "k"},
			wantRange: []any{"content-length-range", float64(0), float64(5)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			post, err := s.PresignPost("my-bucket", c.o)
			if err != nil {
				t.Fatal(err)
			}
			if post.URL != "https://my-bucket.storage.example.com/" {
				t.Errorf("URL %s", post.URL)
			}
			if post.Fields["key"] != c.wantKey {
				t.Errorf("key field %q, want %q", post.Fields["key"], c.wantKey)
			}
			p := decodePolicy(t, post.Fields["policy"])
			if p.Expiration != "2024-03-01T00:59:58.000Z" {
				t.Errorf("default expiration %q", p.Expiration)
			}
			if !reflect.DeepEqual(p.Conditions[1], c.wantCond) {
				t.Errorf("key condition %#v, want %#v", p.Conditions[1], c.wantCond)
			}
			if c.wantRange != nil && !reflect.DeepEqual(p.Conditions[2], c.wantRange) {
				t.Errorf("third condition %#v, want %#v", p.Conditions[2], c.wantRange)
			}
			if got, want := post.Fields["x-amz-signature"], postSignature(testCreds.SecretAccessKey, "20240229", "us-east-1", post.Fields["policy"]); got != want {
				t.Errorf("signature %s, independently computed %s", got, want)
			}
		})
	}
}

func TestPresignPostRejects(t *testing.T) {
	s := testSigner("http://127.0.0.1:9000")
	for name, o := range map[string]PostOptions{
		"expiry":                 {Expires: MaxExpires + time.Second},
		"key outside prefix":     {Key: "a/x", KeyStartsWith: "b/"},
		"type outside prefix":    {ContentType: "text/plain", ContentTypeStartsWith: "image/"},
		"min above max":          {MinSize: 10, MaxSize: 5},
		"negative size":          {MaxSize: -1},
		"status":                 {SuccessActionStatus: 302},
		"metadata name":          {Metadata: map[string]string{"a b": "x"}},
		"metadata value":         {Metadata: map[string]string{"a": "x\r\ny"}},
		"metadata twice":         {Metadata: map[string]string{"A": "1", "a": "2"}},
		"condition not object":   {Conditions: []any{"acl"}},
		"condition not jsonable": {Conditions: []any{map[string]any{"f": func() {}}}},
		"key not utf-8":          {Key: "\xff"},
	} {
		if _, err := s.PresignPost("b", o); err == nil {
			t.Errorf("%s: succeeded", name)
		}
	}
	s.Credentials.SecretAccessKey = ""
	if _, err := s.PresignPost("b", PostOptions{Key: "k"}); err == nil {
		t.Error("no secret: succeeded")
	}
}

func BenchmarkPresignPost(b *testing.B) {
	s := &Signer{Endpoint: "https://storage.example.com", Credentials: testCreds}
	o := PostOptions{KeyStartsWith: "uploads/", ContentTypeStartsWith: "image/", MaxSize: 10 << 20}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PresignPost("photos", o); err != nil {
			b.Fatal(err)
		}
	}
}
