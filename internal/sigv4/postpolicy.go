package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"time"

	"nfyio.dev/storage/internal/s3err"
)

// VerifyPostPolicy verifies the signature of the base64 policy document of
// a browser form upload (POST Object). fields are the form fields, names
// lower-cased.
//
// SigV4: x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature,
// the hex HMAC-SHA256 of the base64 policy with the signing key of the
// credential scope. SigV2: awsaccesskeyid and signature, the base64
// HMAC-SHA1 of the base64 policy. A form with none of these fields is
// anonymous (Kind Anonymous, nil error).
//
// Only the signature is checked here; the policy's expiration and
// conditions are the caller's to enforce.
func (v *Verifier) VerifyPostPolicy(ctx context.Context, fields map[string]string) (*Auth, error) {
	_, v4 := fields["x-amz-signature"]
	if !v4 {
		_, v4 = fields["x-amz-credential"]
	}
	if !v4 {
		_, v4 = fields["x-amz-algorithm"]
	}
	_, v2 := fields["awsaccesskeyid"]
	if !v2 {
		_, v2 = fields["signature"]
	}
	switch {
	case v4:
		return v.verifyPostV4(ctx, fields)
	case v2:
		return v.verifyPostV2(ctx, fields)
	}
	return &Auth{Kind: Anonymous}, nil
}

// missingPostField is S3's error for a form lacking a field the chosen
// authentication needs.
func missingPostField(name string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage("Bucket POST must contain a field named '"+name+"'.  If it is specified, please check the order of the fields.").
		With(s3err.Field{Name: "ArgumentName", Value: name},
			s3err.Field{Name: "ArgumentValue", Value: ""})
}

func postArgument(msg, name, value string) *s3err.Error {
	return s3err.InvalidArgument.WithMessage(msg).
		With(s3err.Field{Name: "ArgumentName", Value: name},
			s3err.Field{Name: "ArgumentValue", Value: value})
}

func (v *Verifier) verifyPostV4(ctx context.Context, fields map[string]string) (*Auth, error) {
	for _, name := range []string{"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature", "policy"} {
		if fields[name] == "" {
			return nil, missingPostField(name)
		}
	}
	if alg := fields["x-amz-algorithm"]; alg != algorithmV4 {
		return nil, postArgument(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`, "x-amz-algorithm", alg)
	}
	cred, detail := parseCredential(fields["x-amz-credential"])
	if detail != "" {
		return nil, postArgument("Error parsing the X-Amz-Credential parameter; "+detail, "x-amz-credential", fields["x-amz-credential"])
	}
	t, err := time.Parse(iso8601Basic, fields["x-amz-date"])
	if err != nil {
		return nil, postArgument(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`, "x-amz-date", fields["x-amz-date"])
	}
	secret, err := v.lookupSecret(ctx, cred.AccessKeyID)
	if err != nil {
		return nil, err
	}
	policy, provided := fields["policy"], fields["x-amz-signature"]
	key := v.keys.get(secret, cred.Date, cred.Region, cred.Service)
	if !key.matchesString(policy, provided) {
		return nil, signatureMismatchV2(cred.AccessKeyID, policy, provided)
	}
	return &Auth{Kind: PostPolicyV4, AccessKeyID: cred.AccessKeyID, Region: cred.Region, Date: t}, nil
}

func (v *Verifier) verifyPostV2(ctx context.Context, fields map[string]string) (*Auth, error) {
	for _, name := range []string{"awsaccesskeyid", "signature", "policy"} {
		if fields[name] == "" {
			// S3 spells this one in its canonical case.
			if name == "awsaccesskeyid" {
				name = "AWSAccessKeyId"
			}
			return nil, missingPostField(name)
		}
	}
	accessKeyID := fields["awsaccesskeyid"]
	secret, err := v.lookupSecret(ctx, accessKeyID)
	if err != nil {
		return nil, err
	}
	policy, provided := fields["policy"], fields["signature"]
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(policy))
	want, err := base64.StdEncoding.DecodeString(provided)
	if err != nil || !hmac.Equal(m.Sum(nil), want) {
		return nil, signatureMismatchV2(accessKeyID, policy, provided)
	}
	return &Auth{Kind: PostPolicyV2, AccessKeyID: accessKeyID}, nil
}
