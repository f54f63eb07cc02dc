package s3test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/presign"
)

// This file proves the life of an access key as clients see it: disabled,
// deleted, expired and rotated keys stop working at once, for header-signed
// requests and for presigned URLs minted before the change, and secrets are
// never written to disk in the clear.

// scProbe reads one object with a key, header-signed and through a URL
// presigned before the change under test.
type scProbe struct {
	t      *testing.T
	srv    *Server
	bucket string
	key    string
}

func (p *scProbe) header(id, secret string) error {
	c := p.srv.SDKWith(p.t, id, secret, func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	return scDrain(c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(p.key)}))
}

func (p *scProbe) mint(id, secret string) presign.URL {
	p.t.Helper()
	s := presign.Signer{Endpoint: p.srv.URL, Region: Region, Credentials: presign.Credentials{AccessKeyID: id, SecretAccessKey: secret}}
	u, err := s.Presign(p.bucket, p.key, presign.Options{Expires: time.Hour})
	if err != nil {
		p.t.Fatal(err)
	}
	return u
}

// works fails unless both the key's header-signed request and the URL succeed.
func (p *scProbe) works(id, secret string, u presign.URL) {
	p.t.Helper()
	if err := p.header(id, secret); err != nil {
		p.t.Fatalf("header-signed request with key %s: %v", id, err)
	}
	scWantStatus(p.t, scSend(p.t, u, nil, 0, nil), http.StatusOK)
}

// fails checks that both are refused with 403 code, and message when not "".
func (p *scProbe) fails(id, secret string, u presign.URL, code, message string) {
	p.t.Helper()
	err := p.header(id, secret)
	if apiCode(err) != code || scStatus(err) != http.StatusForbidden || !strings.Contains(scMessage(err), message) {
		p.t.Fatalf("header-signed: want 403 %s %q, got %v", code, message, err)
	}
	resp := scSend(p.t, u, nil, 0, nil)
	gotCode, gotMsg := scErrorBody(p.t, resp)
	if resp.StatusCode != http.StatusForbidden || gotCode != code || !strings.Contains(gotMsg, message) {
		p.t.Fatalf("presigned: want 403 %s %q, got %d %s %q", code, message, resp.StatusCode, gotCode, gotMsg)
	}
}

func TestKeyLifecycle(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	keys := srv.Srv.Keys()
	root := srv.SDK(t)
	mustCreate(t, root, "life")
	(&scFixture{t: t, root: root}).put("life", "o.txt")
	ro := []string{iam.ScopeReadObjects}

	t.Run("disabled", func(t *testing.T) {
		p := &scProbe{t: t, srv: srv, bucket: "life", key: "o.txt"}
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: ro})
		u := p.mint(id, secret)
		p.works(id, secret, u)
		if err := keys.Disable(ctx, id); err != nil {
			t.Fatal(err)
		}
		// S3 answers for an inactive key as for an unknown one.
		p.fails(id, secret, u, "InvalidAccessKeyId", "")
		if err := keys.Enable(ctx, id); err != nil {
			t.Fatal(err)
		}
		p.works(id, secret, u)
	})

	t.Run("deleted", func(t *testing.T) {
		p := &scProbe{t: t, srv: srv, bucket: "life", key: "o.txt"}
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: ro})
		u := p.mint(id, secret)
		p.works(id, secret, u)
		if err := keys.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		p.fails(id, secret, u, "InvalidAccessKeyId", "")
		// A new key with the same ID and secret is a new grant, not a
		// resurrection of the URL's: it works because the signature is
		// valid for it, which shows the refusal above came from the key.
		if _, _, err := keys.Create(ctx, iam.KeySpec{ID: id, Secret: secret, Scopes: ro}); err != nil {
			t.Fatal(err)
		}
		p.works(id, secret, u)
	})

	t.Run("expired", func(t *testing.T) {
		p := &scProbe{t: t, srv: srv, bucket: "life", key: "o.txt"}
		expires := time.Now().Add(1500 * time.Millisecond)
		id, secret := scNewKey(t, srv, iam.KeySpec{Scopes: ro, Expires: expires})
		u := p.mint(id, secret)
		p.works(id, secret, u)
		time.Sleep(time.Until(expires) + 100*time.Millisecond)
		p.fails(id, secret, u, "AccessDenied", "key expired")
	})

	t.Run("rotated", func(t *testing.T) {
		p := &scProbe{t: t, srv: srv, bucket: "life", key: "o.txt"}
		id, oldSecret := scNewKey(t, srv, iam.KeySpec{Scopes: ro})
		old := p.mint(id, oldSecret)
		p.works(id, oldSecret, old)
		newSecret, err := keys.Rotate(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if newSecret == oldSecret || newSecret == "" {
			t.Fatalf("rotate gave secret %q", newSecret)
		}
		p.fails(id, oldSecret, old, "SignatureDoesNotMatch", "")
		p.works(id, newSecret, p.mint(id, newSecret))
	})
}

// scSecretForms are the encodings a leaked secret could be stored in.
func scSecretForms(secret string) map[string][]byte {
	forms := map[string][]byte{
		"plain":         []byte(secret),
		"base64":        []byte(base64.StdEncoding.EncodeToString([]byte(secret))),
		"base64url":     []byte(base64.RawURLEncoding.EncodeToString([]byte(secret))),
		"hex":           []byte(hex.EncodeToString([]byte(secret))),
		"hex upper":     []byte(strings.ToUpper(hex.EncodeToString([]byte(secret)))),
		"json (utf-16)": scUTF16LE(secret),
	}
	// Generated secrets are base64 text: their raw bytes would be a leak too.
	if raw, err := base64.StdEncoding.DecodeString(secret); err == nil && len(raw) >= 16 {
		forms["raw bytes"] = raw
		forms["raw bytes hex"] = []byte(hex.EncodeToString(raw))
	}
	return forms
}

func scUTF16LE(s string) []byte {
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, s[i], 0)
	}
	return out
}

// TestNoSecretAtRest reads every file the embedded store wrote, once it has
// shut down, and finds no access-key secret in any encoding. The root
// credentials file, which exists to hand the operator the root secret, is
// the one exception.
func TestNoSecretAtRest(t *testing.T) {
	NoEnv(t)
	srv := Start(t)
	if !srv.Embedded() {
		t.Skip("the metadata is not in the data directory with this backend")
	}
	ctx := context.Background()
	keys := srv.Srv.Keys()
	secrets := map[string]string{"root": RootSecretKey}
	var ids []string
	for i, spec := range []iam.KeySpec{
		{Scopes: []string{iam.ScopeReadObjects}},
		{Scopes: []string{iam.ScopeAdmin}, Name: "imported"},
		{ID: "IMPORTEDKEY0000001", Secret: "imported-secret-Value-0123456789", Scopes: []string{iam.ScopeWriteObjects}},
	} {
		id, secret := scNewKey(t, srv, spec)
		secrets[id] = secret
		ids = append(ids, id)
		// Use the key, so that whatever the server keeps about a used key
		// is on disk too.
		c := srv.SDKWith(t, id, secret)
		_, _ = c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if i == 0 {
			rotated, err := keys.Rotate(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			secrets[id+" (rotated)"] = rotated
		}
	}
	shut, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Srv.Shutdown(shut); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	meta, err := os.ReadFile(filepath.Join(srv.DataDir, "meta.db"))
	if err != nil {
		t.Fatalf("read the metadata store: %v", err)
	}
	// The search must be able to find what is there: key IDs are stored
	// in the clear.
	for _, id := range ids {
		if !bytes.Contains(meta, []byte(id)) {
			t.Fatalf("key ID %s not found in meta.db: the search reads the wrong file", id)
		}
	}
	err = filepath.WalkDir(srv.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == "root-credentials" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for who, secret := range secrets {
			for form, needle := range scSecretForms(secret) {
				if bytes.Contains(b, needle) {
					t.Errorf("%s holds the secret of %s (%s)", path, who, form)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAdminRefusesAlteredBody: an admin request signs its body's SHA-256;
// a body changed after signing (here, to grant scope admin) is refused and
// creates nothing, whether the request was header-signed or presigned.
func TestAdminRefusesAlteredBody(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	original := []byte(`{"name":"a reader for the app","scopes":["read:objects"]}`)
	// Same length, so only the payload hash can tell.
	altered := []byte(`{"name":"evil","scopes":["admin"]}`)
	altered = append(altered[:len(altered)-1], bytes.Repeat([]byte(" "), len(original)-len(altered))...)
	altered = append(altered, '}')
	if len(altered) != len(original) {
		t.Fatalf("bodies differ in length: %d %d", len(altered), len(original))
	}
	sum := sha256.Sum256(original)
	signedHash := hex.EncodeToString(sum[:])

	headerSigned := func(body []byte) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/_nfyio/admin/keys", bytes.NewReader(original))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Amz-Content-Sha256", signedHash)
		creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, signedHash, "s3", Region, time.Now()); err != nil {
			t.Fatal(err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	// A presigned request can sign its payload too: the hash goes into the
	// canonical request and travels in the signed x-amz-content-sha256
	// header.
	presigned := func(body []byte) *http.Response {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/_nfyio/admin/keys?X-Amz-Expires=60", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Amz-Content-Sha256", signedHash)
		creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
		signedURL, signed, err := v4.NewSigner().PresignHTTP(ctx, creds, req, signedHash, "s3", Region, time.Now(),
			func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
		if err != nil {
			t.Fatal(err)
		}
		signed.Del("Host")
		return scSend(t, presign.URL{URL: signedURL, Method: http.MethodPost, Headers: signed}, bytes.NewReader(body), int64(len(body)), nil)
	}
	for name, send := range map[string]func([]byte) *http.Response{"header": headerSigned, "presigned": presigned} {
		t.Run(name, func(t *testing.T) {
			before, err := srv.Srv.Keys().List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			resp := send(altered)
			var e struct{ Error, Message string }
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != http.StatusBadRequest || e.Error != "XAmzContentSHA256Mismatch" {
				t.Fatalf("altered body: want 400 XAmzContentSHA256Mismatch, got %d %+v", resp.StatusCode, e)
			}
			after, err := srv.Srv.Keys().List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) {
				t.Fatalf("the refused request created a key: %d keys before, %d after", len(before), len(after))
			}
			// The same request with the body it signed goes through.
			resp = send(original)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("original body: want 201, got %d", resp.StatusCode)
			}
		})
	}
}

// TestAdminRequiresSignedPayload: an admin request with a body must sign
// the body's SHA-256. UNSIGNED-PAYLOAD, a streaming payload or Signature
// Version 2 (which signs no body) is refused with 400 InvalidRequest in the
// admin API's JSON, and nothing changes; bodyless GET and DELETE still work
// unsigned.
func TestAdminRequiresSignedPayload(t *testing.T) {
	NoEnv(t)
	srv := Start(t, scNoSync)
	ctx := context.Background()
	creds := aws.Credentials{AccessKeyID: RootAccessKey, SecretAccessKey: RootSecretKey}
	const keysURL = "/_nfyio/admin/keys"
	spec := []byte(`{"accessKeyId":"AKUNSIGNEDBODY000001","name":"smuggled","scopes":["admin"]}`)

	// headerSigned signs with payloadHash as x-amz-content-sha256.
	headerSigned := func(method, path string, body []byte, payloadHash string) *http.Response {
		t.Helper()
		return srv.Signed(t, method, path, body, nil, payloadHash)
	}
	wantRefused := func(what string, resp *http.Response) {
		t.Helper()
		var e struct{ Error, Message string }
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			t.Fatalf("%s: %d, answer is not the admin API's JSON: %v", what, resp.StatusCode, err)
		}
		if resp.StatusCode != http.StatusBadRequest || e.Error != "InvalidRequest" || !strings.Contains(e.Message, "signed payload hash") {
			t.Fatalf("%s: want 400 InvalidRequest naming the signed payload hash, got %d %+v", what, resp.StatusCode, e)
		}
	}
	keyCount := func() int {
		t.Helper()
		ks, err := srv.Srv.Keys().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	before := keyCount()

	wantRefused("header-signed UNSIGNED-PAYLOAD create", headerSigned("POST", keysURL, spec, "UNSIGNED-PAYLOAD"))
	wantRefused("header-signed streaming create", headerSigned("POST", keysURL, spec, "STREAMING-UNSIGNED-PAYLOAD-TRAILER"))

	// A presigned URL that names no payload hash is UNSIGNED-PAYLOAD.
	pre, err := http.NewRequest("POST", srv.URL+keysURL+"?X-Amz-Expires=60", nil)
	if err != nil {
		t.Fatal(err)
	}
	presignedURL, _, err := v4.NewSigner().PresignHTTP(ctx, creds, pre, "UNSIGNED-PAYLOAD", "s3", Region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp := scSend(t, presign.URL{URL: presignedURL, Method: "POST"}, bytes.NewReader(spec), int64(len(spec)), nil)
	wantRefused("presigned create without a payload hash", resp)

	// Signature Version 2 signs no body at all.
	v2 := psPresignV2(srv.URL, "POST", "_nfyio", "admin/keys", "application/json", time.Now().Add(time.Minute), nil)
	resp = scSend(t, presign.URL{URL: v2, Method: "POST"}, bytes.NewReader(spec), int64(len(spec)), http.Header{"Content-Type": {"application/json"}})
	wantRefused("Signature Version 2 create", resp)

	if n := keyCount(); n != before {
		t.Fatalf("refused requests created a key: %d keys before, %d after", before, n)
	}
	if _, err := srv.Srv.Keys().Get(ctx, "AKUNSIGNEDBODY000001"); err == nil {
		t.Fatal("the smuggled key exists")
	}

	// Actions are POSTs: even without a body they must sign the (empty)
	// payload's hash.
	victim, _ := scNewKey(t, srv, iam.KeySpec{Scopes: []string{"read:objects"}})
	wantRefused("UNSIGNED-PAYLOAD disable", headerSigned("POST", keysURL+"/"+victim+"/disable", nil, "UNSIGNED-PAYLOAD"))
	// A body on DELETE must be signed too, even though DELETE ignores it.
	wantRefused("UNSIGNED-PAYLOAD delete with a body", headerSigned("DELETE", keysURL+"/"+victim, []byte("{}"), "UNSIGNED-PAYLOAD"))
	if k, err := srv.Srv.Keys().Get(ctx, victim); err != nil || k.Disabled {
		t.Fatalf("refused requests changed the key: %+v %v", k, err)
	}
	empty := sha256.Sum256(nil)
	if resp := headerSigned("POST", keysURL+"/"+victim+"/disable", nil, hex.EncodeToString(empty[:])); resp.StatusCode != http.StatusOK {
		t.Fatalf("disable signing the empty payload's hash: %d", resp.StatusCode)
	}

	// Bodyless GET and DELETE keep working unsigned.
	if resp := headerSigned("GET", keysURL, nil, "UNSIGNED-PAYLOAD"); resp.StatusCode != http.StatusOK {
		t.Fatalf("unsigned GET: %d", resp.StatusCode)
	}
	if resp := headerSigned("DELETE", keysURL+"/"+victim, nil, "UNSIGNED-PAYLOAD"); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("unsigned DELETE: %d", resp.StatusCode)
	}
	if _, err := srv.Srv.Keys().Get(ctx, victim); err == nil {
		t.Fatal("the key survived its DELETE")
	}

	// The same create, signing its body's SHA-256, goes through.
	sum := sha256.Sum256(spec)
	if resp := headerSigned("POST", keysURL, spec, hex.EncodeToString(sum[:])); resp.StatusCode != http.StatusCreated {
		t.Fatalf("signed create: %d", resp.StatusCode)
	}
}
