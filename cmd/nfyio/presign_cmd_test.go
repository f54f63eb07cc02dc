package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func runCmd(fn func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = fn(args, &out, &errb)
	return out.String(), errb.String(), code
}

func presignCmd(args []string, o, e *bytes.Buffer) int     { return runPresign(args, o, e) }
func presignPostCmd(args []string, o, e *bytes.Buffer) int { return runPresignPost(args, o, e) }

// mustPresign runs "nfyio presign" and returns the one URL it printed.
func mustPresign(t *testing.T, args ...string) *url.URL {
	t.Helper()
	out, errOut, code := runCmd(presignCmd, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("presign %v: exit %d, stderr %q", args, code, errOut)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("presign %v: want one newline-terminated line, got %q", args, out)
	}
	u, err := url.Parse(strings.TrimSuffix(out, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// specEncode is SigV4's URI encoding: everything but A-Z a-z 0-9 - _ . ~.
func specEncode(s string) string {
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
}

func deriveKey(secret, date, region string) []byte {
	key := []byte("AWS4" + secret)
	for _, part := range []string{date, region, "s3", "aws4_request"} {
		key = hmacSum(key, part)
	}
	return key
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// verifyPresigned checks a presigned URL as a server would, from the
// SigV4 specification: the canonical request is rebuilt from the URL as
// received plus the headers the client sends.
func verifyPresigned(t *testing.T, u *url.URL, method string, headers http.Header, secret string) {
	t.Helper()
	q := u.Query()
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
	var ch strings.Builder
	for _, h := range strings.Split(q.Get("X-Amz-SignedHeaders"), ";") {
		v := u.Host
		if h != "host" {
			v = strings.Join(strings.Fields(strings.Join(headers.Values(h), ",")), " ")
		}
		ch.WriteString(h + ":" + v + "\n")
	}
	canonical := strings.Join([]string{method, u.EscapedPath(), strings.Join(pairs, "&"), ch.String(),
		q.Get("X-Amz-SignedHeaders"), "UNSIGNED-PAYLOAD"}, "\n")
	scope := strings.SplitN(q.Get("X-Amz-Credential"), "/", 2)
	if len(scope) != 2 {
		t.Fatalf("credential %q", q.Get("X-Amz-Credential"))
	}
	parts := strings.Split(scope[1], "/")
	if len(parts) != 4 || parts[2] != "s3" || parts[3] != "aws4_request" || !strings.HasPrefix(q.Get("X-Amz-Date"), parts[0]+"T") {
		t.Fatalf("credential scope %q with date %q", scope[1], q.Get("X-Amz-Date"))
	}
	sum := sha256.Sum256([]byte(canonical))
	sts := "AWS4-HMAC-SHA256\n" + q.Get("X-Amz-Date") + "\n" + scope[1] + "\n" + hex.EncodeToString(sum[:])
	if want := hex.EncodeToString(hmacSum(deriveKey(secret, parts[0], parts[1]), sts)); q.Get("X-Amz-Signature") != want {
		t.Errorf("signature %s, independently computed %s\ncanonical request:\n%s", q.Get("X-Amz-Signature"), want, canonical)
	}
}

func TestPresignCommand(t *testing.T) {
	cleanEnv(t)
	t.Setenv("NFYIO_ACCESS_KEY_ID", "NFYIOKEY")
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", "nfyio/secret+key")

	u := mustPresign(t, "s3://photos/2024/a b+c ü.jpg")
	if u.Scheme != "http" || u.Host != "127.0.0.1:9000" || u.EscapedPath() != "/photos/2024/a%20b%2Bc%20%C3%BC.jpg" {
		t.Errorf("URL %s", u)
	}
	q := u.Query()
	if q.Get("X-Amz-Expires") != "3600" || q.Get("X-Amz-SignedHeaders") != "host" ||
		!regexp.MustCompile(`^NFYIOKEY/\d{8}/us-east-1/s3/aws4_request$`).MatchString(q.Get("X-Amz-Credential")) {
		t.Errorf("query %v", q)
	}
	verifyPresigned(t, u, "GET", nil, "nfyio/secret+key")

	// Flags after the URI, as with aws s3 presign.
	u = mustPresign(t, "s3://b1/k", "--expires-in", "604800", "--region", "eu-west-1",
		"--endpoint-url", "https://storage.example.com", "--response-content-disposition", `attachment; filename="x y.txt"`,
		"--response-content-type", "text/plain", "--once")
	q = u.Query()
	if u.Host != "storage.example.com" || q.Get("X-Amz-Expires") != "604800" ||
		q.Get("response-content-disposition") != `attachment; filename="x y.txt"` ||
		q.Get("response-content-type") != "text/plain" || len(q.Get("X-Nfyio-Once")) != 22 ||
		!strings.Contains(q.Get("X-Amz-Credential"), "/eu-west-1/") {
		t.Errorf("URL %s", u)
	}
	verifyPresigned(t, u, "GET", nil, "nfyio/secret+key")

	// A PUT with signed headers.
	u = mustPresign(t, "--method", "PUT", "--content-type", "image/png", "--content-length", "1234", "--expires-in=60", "s3://b1/up.png")
	if got := u.Query().Get("X-Amz-SignedHeaders"); got != "content-length;content-type;host" {
		t.Errorf("signed headers %q", got)
	}
	verifyPresigned(t, u, "PUT", http.Header{"Content-Type": {"image/png"}, "Content-Length": {"1234"}}, "nfyio/secret+key")

	for _, m := range []string{"head", "delete"} {
		u = mustPresign(t, "--method", m, "s3://b1/dir/")
		if u.EscapedPath() != "/b1/dir/" {
			t.Errorf("%s: path %s", m, u.EscapedPath())
		}
		verifyPresigned(t, u, strings.ToUpper(m), nil, "nfyio/secret+key")
	}

	// Virtual-hosted addressing puts the bucket in the host.
	u = mustPresign(t, "--virtual-hosted", "--endpoint-url", "http://storage.local:9000", "s3://my-bucket/k/../x")
	if u.Host != "my-bucket.storage.local:9000" || u.EscapedPath() != "/k/../x" {
		t.Errorf("virtual-hosted URL %s", u)
	}
	verifyPresigned(t, u, "GET", nil, "nfyio/secret+key")

	// -- ends the flags: a key may then look like a flag.
	u = mustPresign(t, "--region", "r1", "--", "s3://b1/-weird")
	if u.EscapedPath() != "/b1/-weird" {
		t.Errorf("after --: %s", u)
	}
}

func TestPresignCommandErrors(t *testing.T) {
	cleanEnv(t)
	usage := []struct {
		name string
		args []string
	}{
		{"no argument", nil},
		{"two arguments", []string{"s3://b/k", "s3://b/k2"}},
		{"not s3", []string{"https://b/k"}},
		{"no bucket", []string{"s3:///k"}},
		{"no key", []string{"s3://b"}},
		{"empty key", []string{"s3://b/"}},
		{"unknown flag", []string{"--nope", "s3://b/k"}},
		{"bad number", []string{"--expires-in", "soon", "s3://b/k"}},
		{"expires zero", []string{"--expires-in", "0", "s3://b/k"}},
		{"expires too long", []string{"--expires-in", "604801", "s3://b/k"}},
		{"bad method", []string{"--method", "post", "s3://b/k"}},
		{"content type on get", []string{"--content-type", "a/b", "s3://b/k"}},
		{"negative length", []string{"--method", "put", "--content-length", "-1", "s3://b/k"}},
		{"override on put", []string{"--method", "put", "--response-content-type", "a/b", "s3://b/k"}},
	}
	for _, c := range usage {
		out, errOut, code := runCmd(presignCmd, c.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errOut, "nfyio presign: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 with a message", c.name, code, out, errOut)
		}
	}

	// Failures that are not the command line's fault exit 1.
	out, errOut, code := runCmd(presignCmd, "s3://b/k")
	if code != 1 || out != "" || !strings.Contains(errOut, "no credentials") {
		t.Errorf("no credentials: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "A")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "S")
	out, errOut, code = runCmd(presignCmd, "--endpoint-url", "localhost:9000", "s3://b/k")
	if code != 1 || out != "" || !strings.Contains(errOut, "localhost:9000") {
		t.Errorf("bad endpoint: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = runCmd(presignCmd, "--profile", "nope", "s3://b/k")
	if code != 1 || out != "" || !strings.Contains(errOut, "nope") {
		t.Errorf("missing profile: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Help goes to stdout and succeeds.
	out, errOut, code = runCmd(presignCmd, "-h")
	if code != 0 || !strings.Contains(out, "usage: nfyio presign") || !strings.Contains(out, "-expires-in") || errOut != "" {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestPresignCommandUsesFiles(t *testing.T) {
	home := cleanEnv(t)
	writeAWSFiles(t, home, filesFixture, configFixture)
	// Environment keys are ignored for an explicit profile.
	t.Setenv("AWS_ACCESS_KEY_ID", "AWSENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-env-secret")
	u := mustPresign(t, "--profile", "work", "s3://bucket-1/k")
	q := u.Query()
	if u.Host != "bucket-1.config-work:9000" || !strings.HasPrefix(q.Get("X-Amz-Credential"), "FILEWORK/") ||
		!strings.Contains(q.Get("X-Amz-Credential"), "/eu-north-1/") || q.Get("X-Amz-Security-Token") != "file-work-token" {
		t.Errorf("URL %s", u)
	}
	verifyPresigned(t, u, "GET", nil, "file/work+secret==")

	u = mustPresign(t, "s3://b/k")
	if u.Host != "config-default:9000" || !strings.HasPrefix(u.Query().Get("X-Amz-Credential"), "AWSENV/") {
		t.Errorf("URL %s", u)
	}
	verifyPresigned(t, u, "GET", nil, "aws-env-secret")
}

type postOutput struct {
	URL    string            `json:"url"`
	Fields map[string]string `json:"fields"`
}

func mustPresignPost(t *testing.T, args ...string) postOutput {
	t.Helper()
	out, errOut, code := runCmd(presignPostCmd, args...)
	if code != 0 || errOut != "" {
		t.Fatalf("presign-post %v: exit %d, stderr %q", args, code, errOut)
	}
	var p postOutput
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("presign-post output %q: %v", out, err)
	}
	return p
}

// verifyPost checks the policy signature from the specification and returns
// the decoded policy.
func verifyPost(t *testing.T, p postOutput, secret string) map[string]any {
	t.Helper()
	cred := strings.Split(p.Fields["x-amz-credential"], "/")
	if len(cred) != 5 || p.Fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256" || !strings.HasPrefix(p.Fields["x-amz-date"], cred[1]+"T") {
		t.Fatalf("fields %v", p.Fields)
	}
	if want := hex.EncodeToString(hmacSum(deriveKey(secret, cred[1], cred[2]), p.Fields["policy"])); p.Fields["x-amz-signature"] != want {
		t.Errorf("signature %s, independently computed %s", p.Fields["x-amz-signature"], want)
	}
	raw, err := base64.StdEncoding.DecodeString(p.Fields["policy"])
	if err != nil {
		t.Fatal(err)
	}
	var policy map[string]any
	if err := json.Unmarshal(raw, &policy); err != nil {
		t.Fatal(err)
	}
	return policy
}

func TestPresignPostCommand(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AWSKEY")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("AWS_REGION", "eu-west-2")

	p := mustPresignPost(t, "s3://uploads/user/7/", "--key-starts-with", "--content-type", "image/png",
		"--max-size", "1048576", "--min-size", "1", "--expires-in", "300", "--success-action-status", "201")
	if p.URL != "http://127.0.0.1:9000/uploads" {
		t.Errorf("url %s", p.URL)
	}
	if p.Fields["key"] != "user/7/${filename}" || p.Fields["Content-Type"] != "image/png" || p.Fields["success_action_status"] != "201" {
		t.Errorf("fields %v", p.Fields)
	}
	policy := verifyPost(t, p, "aws-secret")
	conds, _ := json.Marshal(policy["conditions"])
	for _, want := range []string{
		`{"bucket":"uploads"}`, `["starts-with","$key","user/7/"]`, `{"Content-Type":"image/png"}`,
		`["content-length-range",1,1048576]`, `{"success_action_status":"201"}`,
	} {
		if !strings.Contains(string(conds), want) {
			t.Errorf("conditions %s lack %s", conds, want)
		}
	}
	if !strings.Contains(p.Fields["x-amz-credential"], "/eu-west-2/s3/") {
		t.Errorf("credential %s", p.Fields["x-amz-credential"])
	}

	// An exact key, and virtual-hosted addressing.
	p = mustPresignPost(t, "--virtual-hosted", "--endpoint-url", "https://files.example.com", "s3://avatars/me.png")
	if p.URL != "https://avatars.files.example.com/" || p.Fields["key"] != "me.png" {
		t.Errorf("got %+v", p)
	}
	conds, _ = json.Marshal(verifyPost(t, p, "aws-secret")["conditions"])
	if !strings.Contains(string(conds), `{"key":"me.png"}`) {
		t.Errorf("conditions %s", conds)
	}

	for _, args := range [][]string{
		{},
		{"s3://b/k", "--expires-in", "0"},
		{"s3://b/k", "--max-size", "-1"},
		{"s3://b/k", "--min-size", "10", "--max-size", "5"},
		{"s3://b/k", "--success-action-status", "302"},
		{"b/k"},
	} {
		if out, errOut, code := runCmd(presignPostCmd, args...); code != 2 || out != "" || errOut == "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	if out, _, code := runCmd(presignPostCmd, "s3://b/k"); code != 1 || out != "" {
		t.Errorf("incomplete credentials: exit %d, stdout %q", code, out)
	}
}

// TestPresignMatchesAWSCLI runs the AWS CLI's own "aws s3 presign" with the
// same configuration and checks that nfyio presign is a drop-in: the same
// URL apart from the signing time, both verifiable with the same secret.
func TestPresignMatchesAWSCLI(t *testing.T) {
	const awsCLI = "/usr/bin/aws"
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skip("the AWS CLI is not installed at " + awsCLI)
	}
	home := cleanEnv(t)
	writeAWSFiles(t, home, filesFixture, "[profile work]\nregion = eu-north-1\n")

	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		secret string
	}{
		{
			name:   "environment keys",
			env:    map[string]string{"AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "env/secret+1", "AWS_SESSION_TOKEN": "tok+/="},
			args:   []string{"s3://bucket/dir/a b+c ü%2F..~!'()*.txt", "--expires-in", "600", "--endpoint-url", "http://127.0.0.1:9000", "--region", "eu-west-1"},
			secret: "env/secret+1",
		},
		{
			name:   "profile from files",
			args:   []string{"s3://my-bucket/trailing/", "--profile", "work", "--endpoint-url", "https://storage.example.com:8443"},
			secret: "file/work+secret==",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			cmd := exec.Command(awsCLI, append([]string{"s3", "presign"}, c.args...)...)
			// The CLI gets exactly the test's variables: none of the empty
			// ones, and no CA bundle override.
			cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
			for _, kv := range os.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				if strings.HasPrefix(k, "AWS_") && v != "" && k != "AWS_CA_BUNDLE" {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			awsOut, err := cmd.Output()
			if err != nil {
				t.Fatalf("aws s3 presign: %v\n%s", err, stderr.String())
			}
			want, err := url.Parse(strings.TrimSpace(string(awsOut)))
			if err != nil {
				t.Fatal(err)
			}
			got := mustPresign(t, c.args...)

			if got.Scheme != want.Scheme || got.Host != want.Host || got.EscapedPath() != want.EscapedPath() {
				t.Errorf("URL\n got %s\nwant %s", got, want)
			}
			gq, wq := got.Query(), want.Query()
			for _, q := range []url.Values{gq, wq} {
				q.Del("X-Amz-Date")
				q.Del("X-Amz-Signature")
				cred := strings.Split(q.Get("X-Amz-Credential"), "/")
				cred[1] = "DATE"
				q.Set("X-Amz-Credential", strings.Join(cred, "/"))
			}
			if gq.Encode() != wq.Encode() {
				t.Errorf("query\n got %s\nwant %s", gq.Encode(), wq.Encode())
			}
			verifyPresigned(t, want, "GET", nil, c.secret)
			verifyPresigned(t, got, "GET", nil, c.secret)
		})
	}
}

func TestPresignCommandWritesNothingElse(t *testing.T) {
	// The command must not create files (e.g. caches) in HOME.
	home := cleanEnv(t)
	t.Setenv("NFYIO_ACCESS_KEY_ID", "a")
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", "b")
	mustPresign(t, "s3://b/k")
	mustPresignPost(t, "s3://b/k")
	entries, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("HOME now holds %v", entries)
	}
}
