package server

import "testing"

func TestRedactQuery(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"list-type=2&prefix=a%2Fb": "list-type=2&prefix=a%2Fb",
		"X-Amz-Signature=abc":      "X-Amz-Signature=REDACTED",
		"a=1&X-Amz-Credential=AK%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T000000Z&x-amz-signature=ff": "a=1&X-Amz-Credential=REDACTED&X-Amz-Date=20261130T000000Z&x-amz-signature=REDACTED",
		"AWSAccessKeyId=AK&Expires=1&Signature=zz%3D": "AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED",
		"X-Amz-%53ignature=abc&b=2":                   "X-Amz-%53ignature=REDACTED&b=2",
		"bad%zzname=secret&c=3":                       "REDACTED&c=3",
		"X-Nfyio-Once=tok":                            "X-Nfyio-Once=REDACTED",
		"X-Amz-Security-Token":                        "X-Amz-Security-Token=REDACTED",
		"&&X-Amz-Signature=1&":                        "&&X-Amz-Signature=REDACTED&",
		"uploads&X-Amz-Signature=1x":                  "uploads&X-Amz-Signature=REDACTED",
	} {
		if got := redactQuery(in); got != want {
			t.Errorf("redactQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkRedactQuery(b *testing.B) {
	q := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20261130%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261130T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for b.Loop() {
		redactQuery(q)
	}
}
