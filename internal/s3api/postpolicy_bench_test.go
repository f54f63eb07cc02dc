package s3api

import (
	"context"
	"strings"
	"testing"
	"time"

	"nfyio.dev/storage/internal/sigv4"
	"nfyio.dev/storage/presign"
)

// BenchmarkPostPolicy is the whole check of a browser form upload before
// its file is read: the policy's SigV4 signature (signing key cached), the
// decoding of the base64 JSON policy, and its conditions against the form.
func BenchmarkPostPolicy(b *testing.B) {
	const ak, secret = "BENCHPOSTKEY00000001", "bench-post-secret-0123456789abcdefghijkl"
	s := &presign.Signer{Endpoint: "https://storage.example.com", Credentials: presign.Credentials{AccessKeyID: ak, SecretAccessKey: secret}}
	post, err := s.PresignPost("photos", presign.PostOptions{
		KeyStartsWith: "uploads/", ContentTypeStartsWith: "image/", MaxSize: 10 << 20,
		SuccessActionStatus: 201, Metadata: map[string]string{"owner": "alice"},
	})
	if err != nil {
		b.Fatal(err)
	}
	form := &postForm{fields: map[string]string{}, names: map[string]string{}, filename: "cat.jpg", hasFilename: true}
	for name, v := range post.Fields {
		form.fields[strings.ToLower(name)] = v
		form.names[strings.ToLower(name)] = name
	}
	form.fields["content-type"] = "image/jpeg"
	form.names["content-type"] = "Content-Type"
	v := sigv4.NewVerifier(func(context.Context, string) (string, error) { return secret, nil }, sigv4.Options{})
	ctx := context.Background()
	check := func() error {
		if _, err := v.VerifyPostPolicy(ctx, form.fields); err != nil {
			return err
		}
		p, err := parsePostPolicy(form.fields["policy"])
		if err != nil {
			return err
		}
		_, err = p.check(time.Now(), form, "photos", form.key())
		return err
	}
	if err := check(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := check(); err != nil {
			b.Fatal(err)
		}
	}
}
