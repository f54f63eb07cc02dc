package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// clientEnvVars are every variable the resolution reads; tests start with
// all of them unset (empty) and a fresh HOME.
var clientEnvVars = []string{
	"NFYIO_ACCESS_KEY_ID", "NFYIO_SECRET_ACCESS_KEY", "NFYIO_ENDPOINT_URL", "NFYIO_REGION",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
	"AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
	"AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_CA_BUNDLE",
}

// cleanEnv gives the test an empty client environment and returns HOME.
func cleanEnv(t *testing.T) string {
	t.Helper()
	for _, v := range clientEnvVars {
		t.Setenv(v, "")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	return home
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeAWSFiles writes ~/.aws/credentials and ~/.aws/config.
func writeAWSFiles(t *testing.T, home, credentials, config string) {
	t.Helper()
	if credentials != "" {
		writeFile(t, filepath.Join(home, ".aws", "credentials"), credentials)
	}
	if config != "" {
		writeFile(t, filepath.Join(home, ".aws", "config"), config)
	}
}

func resolveArgs(t *testing.T, args ...string) (clientConfig, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cf := addClientFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return resolveClientConfig(*cf)
}

func mustResolve(t *testing.T, args ...string) clientConfig {
	t.Helper()
	cfg, err := resolveArgs(t, args...)
	if err != nil {
		t.Fatalf("resolve %v: %v", args, err)
	}
	return cfg
}

const filesFixture = `[default]
aws_access_key_id = FILEDEFAULT
aws_secret_access_key = file-default-secret

[work]
aws_access_key_id=FILEWORK
aws_secret_access_key=file/work+secret==
aws_session_token = file-work-token
`

const configFixture = `# shared config
[default]
region = ap-south-1
endpoint_url = http://config-default:9000

[profile work]
region = eu-north-1
endpoint_url = http://config-work:9000
s3 =
  addressing_style = virtual

[profile svc]
aws_access_key_id = CONFIGSVC
aws_secret_access_key = config-svc-secret
endpoint_url = http://profile-level:9000
services = local-s3

[services local-s3]
s3 =
  endpoint_url = http://service-level:9000
`

func TestResolveDefaults(t *testing.T) {
	cleanEnv(t)
	if _, err := resolveArgs(t); err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Fatalf("without credentials: err = %v", err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "AK")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "SK")
	cfg := mustResolve(t)
	if cfg.Endpoint.String() != "http://127.0.0.1:9000" || cfg.Region != "us-east-1" || !cfg.PathStyle {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.AccessKeyID != "AK" || cfg.SecretAccessKey != "SK" || cfg.SessionToken != "" {
		t.Errorf("credentials: %+v", cfg)
	}
}

func TestResolvePrecedence(t *testing.T) {
	home := cleanEnv(t)
	writeAWSFiles(t, home, filesFixture, configFixture)

	// Files only.
	cfg := mustResolve(t)
	if cfg.AccessKeyID != "FILEDEFAULT" || cfg.Region != "ap-south-1" || cfg.Endpoint.String() != "http://config-default:9000" {
		t.Errorf("files: %+v", cfg)
	}

	// AWS variables beat the files.
	t.Setenv("AWS_ACCESS_KEY_ID", "AWSENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "aws-env-token")
	t.Setenv("AWS_DEFAULT_REGION", "us-west-1")
	t.Setenv("AWS_ENDPOINT_URL", "http://aws-endpoint:9000")
	cfg = mustResolve(t)
	if cfg.AccessKeyID != "AWSENV" || cfg.SessionToken != "aws-env-token" || cfg.Region != "us-west-1" ||
		cfg.Endpoint.String() != "http://aws-endpoint:9000" {
		t.Errorf("AWS env: %+v", cfg)
	}
	// AWS_REGION beats AWS_DEFAULT_REGION; AWS_ENDPOINT_URL_S3 beats AWS_ENDPOINT_URL.
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_ENDPOINT_URL_S3", "https://aws-s3-endpoint")
	cfg = mustResolve(t)
	if cfg.Region != "us-west-2" || cfg.Endpoint.String() != "https://aws-s3-endpoint" {
		t.Errorf("AWS specific env: %+v", cfg)
	}

	// NFYIO variables beat the AWS ones; the session token belongs to the
	// AWS pair and is not mixed in.
	t.Setenv("NFYIO_ACCESS_KEY_ID", "NFYIOENV")
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", "nfyio-env-secret")
	t.Setenv("NFYIO_REGION", "nfyio-region")
	t.Setenv("NFYIO_ENDPOINT_URL", "http://nfyio-endpoint:9000")
	cfg = mustResolve(t)
	if cfg.AccessKeyID != "NFYIOENV" || cfg.SecretAccessKey != "nfyio-env-secret" || cfg.SessionToken != "" ||
		cfg.Region != "nfyio-region" || cfg.Endpoint.String() != "http://nfyio-endpoint:9000" {
		t.Errorf("NFYIO env: %+v", cfg)
	}

	// Flags beat everything.
	cfg = mustResolve(t, "--endpoint-url", "https://flag.example.com:8443", "--region", "flag-region")
	if cfg.Region != "flag-region" || cfg.Endpoint.String() != "https://flag.example.com:8443" || cfg.AccessKeyID != "NFYIOENV" {
		t.Errorf("flags: %+v", cfg)
	}
}

func TestResolveProfiles(t *testing.T) {
	home := cleanEnv(t)
	writeAWSFiles(t, home, filesFixture, configFixture)
	t.Setenv("AWS_ACCESS_KEY_ID", "AWSENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-env-secret")

	// An explicit --profile uses that profile's keys even with keys in the
	// environment, and its region, endpoint and addressing style.
	cfg := mustResolve(t, "--profile", "work")
	want := clientConfig{
		Region: "eu-north-1", AccessKeyID: "FILEWORK", SecretAccessKey: "file/work+secret==",
		SessionToken: "file-work-token", PathStyle: false,
	}
	if cfg.AccessKeyID != want.AccessKeyID || cfg.SecretAccessKey != want.SecretAccessKey ||
		cfg.SessionToken != want.SessionToken || cfg.Region != want.Region || cfg.PathStyle ||
		cfg.Endpoint.String() != "http://config-work:9000" {
		t.Errorf("--profile work: %+v", cfg)
	}

	// AWS_PROFILE picks the profile, but variables still win for the keys.
	t.Setenv("AWS_PROFILE", "work")
	cfg = mustResolve(t)
	if cfg.AccessKeyID != "AWSENV" || cfg.Region != "eu-north-1" {
		t.Errorf("AWS_PROFILE=work: %+v", cfg)
	}
	// --profile beats AWS_PROFILE.
	cfg = mustResolve(t, "--profile", "default")
	if cfg.AccessKeyID != "FILEDEFAULT" || cfg.Region != "ap-south-1" {
		t.Errorf("--profile default over AWS_PROFILE: %+v", cfg)
	}

	// Keys in the config file; a [services] section's s3 endpoint beats the
	// profile's endpoint_url.
	cfg = mustResolve(t, "--profile", "svc")
	if cfg.AccessKeyID != "CONFIGSVC" || cfg.Endpoint.String() != "http://service-level:9000" || cfg.Region != "us-east-1" {
		t.Errorf("--profile svc: %+v", cfg)
	}
	// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops endpoints from files and
	// AWS variables, not from flags or NFYIO_ENDPOINT_URL.
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	t.Setenv("AWS_ENDPOINT_URL", "http://ignored:1")
	if cfg = mustResolve(t, "--profile", "svc"); cfg.Endpoint.String() != "http://127.0.0.1:9000" {
		t.Errorf("ignore configured endpoints: %v", cfg.Endpoint)
	}
	t.Setenv("NFYIO_ENDPOINT_URL", "http://kept:2")
	if cfg = mustResolve(t, "--profile", "svc"); cfg.Endpoint.String() != "http://kept:2" {
		t.Errorf("ignore configured endpoints with NFYIO_ENDPOINT_URL: %v", cfg.Endpoint)
	}

	// A named profile that does not exist is an error; --virtual-hosted
	// turns path-style off.
	if _, err := resolveArgs(t, "--profile", "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing profile: err = %v", err)
	}
	t.Setenv("AWS_PROFILE", "missing")
	if _, err := resolveArgs(t); err == nil {
		t.Error("missing AWS_PROFILE profile: no error")
	}
	t.Setenv("AWS_PROFILE", "")
	if cfg = mustResolve(t, "--virtual-hosted"); cfg.PathStyle {
		t.Error("--virtual-hosted: still path-style")
	}
}

func TestClientConfigStringHidesSecrets(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "VISIBLEID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "hidden-secret")
	t.Setenv("AWS_SESSION_TOKEN", "hidden-token")
	cfg := mustResolve(t)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%v %+v %s", cfg, cfg, cfg)} {
		if strings.Contains(s, "hidden") || !strings.Contains(s, "VISIBLEID") {
			t.Errorf("printed config %q", s)
		}
	}
}

func TestResolveFileLocations(t *testing.T) {
	home := cleanEnv(t)
	// Files under ~/.aws are ignored when the variables point elsewhere;
	// a leading ~ in the variables is the home directory.
	writeAWSFiles(t, home, "[default]\naws_access_key_id = HOMEFILE\naws_secret_access_key = s\n", "[default]\nregion = home-region\n")
	writeFile(t, filepath.Join(home, "alt", "creds"), "[default]\naws_access_key_id = ALTFILE\naws_secret_access_key = s\n")
	writeFile(t, filepath.Join(home, "alt", "conf"), "[profile default]\nregion = alt-region\n")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "~/alt/creds")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "alt", "conf"))
	cfg := mustResolve(t)
	if cfg.AccessKeyID != "ALTFILE" || cfg.Region != "alt-region" {
		t.Errorf("alternate files: %+v", cfg)
	}
	// Files that do not exist are empty, not an error.
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, "none"))
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, "none2"))
	t.Setenv("NFYIO_ACCESS_KEY_ID", "N")
	t.Setenv("NFYIO_SECRET_ACCESS_KEY", "S")
	if cfg = mustResolve(t); cfg.Region != "us-east-1" {
		t.Errorf("no files: %+v", cfg)
	}
	// A file that exists but is not readable as INI is an error naming it.
	bad := filepath.Join(home, "bad")
	writeFile(t, bad, "aws_access_key_id = outside\n")
	t.Setenv("AWS_CONFIG_FILE", bad)
	if _, err := resolveArgs(t); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad config file: err = %v", err)
	}
	// A directory in place of a file is an error too.
	t.Setenv("AWS_CONFIG_FILE", home)
	if _, err := resolveArgs(t); err == nil {
		t.Error("config file is a directory: no error")
	}
}

func TestResolveRejects(t *testing.T) {
	home := cleanEnv(t)
	t.Setenv("NFYIO_ACCESS_KEY_ID", "only-id")
	if _, err := resolveArgs(t); err == nil || !strings.Contains(err.Error(), "NFYIO_ACCESS_KEY_ID") {
		t.Errorf("half an NFYIO pair: err = %v", err)
	}
	t.Setenv("NFYIO_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "only-secret")
	if _, err := resolveArgs(t); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("half an AWS pair: err = %v", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	writeAWSFiles(t, home, "[default]\naws_access_key_id = X\n", "")
	if _, err := resolveArgs(t); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("half a file pair: err = %v", err)
	}
	writeAWSFiles(t, home, "[default]\naws_access_key_id = X\naws_secret_access_key = Y\n", "")
	for _, ep := range []string{"127.0.0.1:9000", "ftp://x", "http://", "http://h/?q=1", "http://u:p@h", "http://h/#f", "http://[::1"} {
		if _, err := resolveArgs(t, "--endpoint-url", ep); err == nil {
			t.Errorf("endpoint %q accepted", ep)
		}
	}
}

func TestParseINI(t *testing.T) {
	in := "\ufeff; leading comment\r\n" +
		"[default]\r\n" +
		"Aws_Access_Key_ID = AK\r\n" +
		"aws_secret_access_key=a#b;c=d==\r\n" +
		"  # indented comment\n" +
		"region: eu-west-1\n" +
		"\n" +
		"[ profile x ]\n" +
		"s3 =\n" +
		"    Endpoint_URL = http://h:1\n" +
		"\taddressing_style = path\n" +
		"after = 1\n"
	got, err := parseINI(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := iniFile{
		"default":   {"aws_access_key_id": "AK", "aws_secret_access_key": "a#b;c=d==", "region": "eu-west-1"},
		"profile x": {"s3": "", "s3.endpoint_url": "http://h:1", "s3.addressing_style": "path", "after": "1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	for _, bad := range []string{
		"key = outside\n",
		"[unterminated\n",
		"[s]\nno delimiter\n",
		"[s]\n= no key\n",
		"[s]\nk = v\n  nested = without parent\n",
	} {
		if _, err := parseINI(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}
