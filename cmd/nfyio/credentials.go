package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Defaults for client subcommands when nothing else is configured.
const (
	defaultEndpointURL = "http://127.0.0.1:9000"
	defaultRegion      = "us-east-1"
)

// clientFlags are the connection flags shared by client subcommands
// (presign, presign-post, keys). Empty means "not given on the command line".
type clientFlags struct {
	endpointURL   string
	region        string
	profile       string
	virtualHosted bool
}

// addClientFlags registers the connection flags on fs.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	fs.StringVar(&f.endpointURL, "endpoint-url", "", "store URL (default $NFYIO_ENDPOINT_URL, $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, profile endpoint_url, "+defaultEndpointURL+")")
	fs.StringVar(&f.region, "region", "", "signing region (default $NFYIO_REGION, $AWS_REGION, $AWS_DEFAULT_REGION, profile region, "+defaultRegion+")")
	fs.StringVar(&f.profile, "profile", "", "profile in the shared AWS config and credentials files (default $AWS_PROFILE, then \"default\")")
	fs.BoolVar(&f.virtualHosted, "virtual-hosted", false, "address the bucket as a host name (bucket.host) instead of a path")
	return f
}

// clientConfig is what a client subcommand needs to reach and sign for a store.
type clientConfig struct {
	Endpoint        *url.URL
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	PathStyle       bool
	// CredentialSource names where the keys came from, for messages.
	CredentialSource string
}

// resolveClientConfig resolves endpoint, region and credentials the way the
// AWS CLI does, with nfyio's own variables in front of the AWS ones. Each
// setting is taken from the first of:
//
//  1. the command-line flags;
//  2. NFYIO_ENDPOINT_URL, NFYIO_REGION, NFYIO_ACCESS_KEY_ID + NFYIO_SECRET_ACCESS_KEY;
//  3. AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_REGION, AWS_DEFAULT_REGION,
//     AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
//  4. the profile (--profile, AWS_PROFILE or "default") in the shared
//     credentials file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials),
//     then in the config file (AWS_CONFIG_FILE or ~/.aws/config), where
//     endpoint_url and region are read too;
//  5. http://127.0.0.1:9000 and us-east-1.
//
// As in the AWS CLI, an explicit --profile means "use that profile's keys":
// credential variables are then ignored. Empty variables count as unset.
func resolveClientConfig(f clientFlags) (clientConfig, error) {
	profileName, explicitProfile := f.profile, f.profile != ""
	if profileName == "" {
		profileName = os.Getenv("AWS_PROFILE")
	}
	named := profileName != ""
	if !named {
		profileName = "default"
	}
	files, err := loadSharedFiles()
	if err != nil {
		return clientConfig{}, err
	}
	prof, found := files.profile(profileName)
	if named && !found {
		return clientConfig{}, fmt.Errorf("profile %q is not in %s or %s", profileName, files.credentialsPath, files.configPath)
	}

	cfg := clientConfig{PathStyle: !f.virtualHosted && prof.config["s3.addressing_style"] != "virtual"}

	// Endpoint.
	ignoreConfigured := strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") ||
		strings.EqualFold(prof.config["ignore_configured_endpoint_urls"], "true")
	endpoint := firstNonEmpty(f.endpointURL, os.Getenv("NFYIO_ENDPOINT_URL"))
	if endpoint == "" && !ignoreConfigured {
		endpoint = firstNonEmpty(os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"),
			prof.serviceS3EndpointURL, prof.config["endpoint_url"])
	}
	if endpoint == "" {
		endpoint = defaultEndpointURL
	}
	if cfg.Endpoint, err = parseEndpointURL(endpoint); err != nil {
		return clientConfig{}, err
	}

	cfg.Region = firstNonEmpty(f.region, os.Getenv("NFYIO_REGION"), os.Getenv("AWS_REGION"),
		os.Getenv("AWS_DEFAULT_REGION"), prof.config["region"], defaultRegion)

	// Credentials: a pair comes from one place, never half from each.
	type source struct {
		name                string
		id, secret, session string
	}
	var sources []source
	if !explicitProfile {
		sources = append(sources,
			source{"NFYIO_ACCESS_KEY_ID/NFYIO_SECRET_ACCESS_KEY",
				os.Getenv("NFYIO_ACCESS_KEY_ID"), os.Getenv("NFYIO_SECRET_ACCESS_KEY"), ""},
			source{"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")},
		)
	}
	sources = append(sources,
		source{fmt.Sprintf("profile %q in %s", profileName, files.credentialsPath),
			prof.credentials["aws_access_key_id"], prof.credentials["aws_secret_access_key"], prof.credentials["aws_session_token"]},
		source{fmt.Sprintf("profile %q in %s", profileName, files.configPath),
			prof.config["aws_access_key_id"], prof.config["aws_secret_access_key"], prof.config["aws_session_token"]},
	)
	for _, s := range sources {
		if s.id == "" && s.secret == "" {
			continue
		}
		if s.id == "" || s.secret == "" {
			return clientConfig{}, fmt.Errorf("incomplete credentials in %s: need both the access key id and the secret", s.name)
		}
		cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken, cfg.CredentialSource = s.id, s.secret, s.session, s.name
		return cfg, nil
	}
	return clientConfig{}, errors.New("no credentials: set NFYIO_ACCESS_KEY_ID and NFYIO_SECRET_ACCESS_KEY, " +
		"or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put aws_access_key_id and aws_secret_access_key in " +
		files.credentialsPath)
}

// String leaves the secret and session token out, so that printing a
// configuration (in an error or a log line) cannot leak them.
func (c clientConfig) String() string {
	endpoint := "<nil>"
	if c.Endpoint != nil {
		endpoint = c.Endpoint.String()
	}
	return fmt.Sprintf("{endpoint %s, region %s, access key %s from %s, path-style %t}",
		endpoint, c.Region, c.AccessKeyID, c.CredentialSource, c.PathStyle)
}

func parseEndpointURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("endpoint URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint URL %q: want http://host[:port] or https://host[:port]", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("endpoint URL %q: must not carry user info, query or fragment", raw)
	}
	return u, nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// sharedFiles are the parsed shared AWS credentials and config files.
type sharedFiles struct {
	credentialsPath, configPath string
	credentials, config         iniFile
}

// profileSettings is one profile's settings from both files.
type profileSettings struct {
	credentials, config  map[string]string
	serviceS3EndpointURL string
}

func loadSharedFiles() (sharedFiles, error) {
	var sf sharedFiles
	home, homeErr := os.UserHomeDir()
	locate := func(env, name string) string {
		if p := os.Getenv(env); p != "" {
			return expandHome(p, home)
		}
		if homeErr != nil {
			return "" // no home and no override: no file
		}
		return filepath.Join(home, ".aws", name)
	}
	sf.credentialsPath = locate("AWS_SHARED_CREDENTIALS_FILE", "credentials")
	sf.configPath = locate("AWS_CONFIG_FILE", "config")
	var err error
	if sf.credentials, err = readINIFile(sf.credentialsPath); err != nil {
		return sf, err
	}
	if sf.config, err = readINIFile(sf.configPath); err != nil {
		return sf, err
	}
	return sf, nil
}

func expandHome(p, home string) string {
	if home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		return filepath.Join(home, p[1:])
	}
	return p
}

// profile returns a profile's settings. In the credentials file a section
// is named after the profile; in the config file it is "[profile NAME]",
// except that the default profile may also be "[default]".
func (sf sharedFiles) profile(name string) (profileSettings, bool) {
	p := profileSettings{credentials: map[string]string{}, config: map[string]string{}}
	found := false
	if sec, ok := sf.credentials[name]; ok {
		p.credentials, found = sec, true
	}
	configNames := []string{"profile " + name}
	if name == "default" {
		configNames = []string{"default", "profile default"}
	}
	for _, n := range configNames {
		if sec, ok := sf.config[n]; ok {
			for k, v := range sec {
				p.config[k] = v
			}
			found = true
		}
	}
	// "services = NAME" points at a [services NAME] section holding
	// per-service settings; only the s3 endpoint matters here.
	if svc := p.config["services"]; svc != "" {
		p.serviceS3EndpointURL = sf.config["services "+svc]["s3.endpoint_url"]
	}
	return p, found
}

// iniFile maps section name to its settings. Keys are lower-cased; a nested
// setting ("s3 =" followed by indented "key = value" lines) is stored as
// "s3.key".
type iniFile map[string]map[string]string

// readINIFile parses path; a missing file is an empty file.
func readINIFile(path string) (iniFile, error) {
	if path == "" {
		return iniFile{}, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return iniFile{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	ini, err := parseINI(bufio.NewScanner(f))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return ini, nil
}

// parseINI reads the small INI dialect of the AWS shared files: [section]
// headers, "key = value" or "key: value" lines, full-line comments starting
// with '#' or ';', and one level of nesting under a key with an empty value.
// Values are kept verbatim (secrets may contain '#' or ';').
func parseINI(sc *bufio.Scanner) (iniFile, error) {
	ini := iniFile{}
	var section map[string]string
	parent := "" // key whose empty value opened a nested block
	for lineNo := 1; sc.Scan(); lineNo++ {
		raw := strings.TrimRight(sc.Text(), " \t\r")
		if lineNo == 1 {
			raw = strings.TrimPrefix(raw, "\ufeff")
		}
		line := strings.TrimLeft(raw, " \t")
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		indented := len(line) < len(raw)
		if !indented && line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("line %d: unterminated section header", lineNo)
			}
			name := strings.TrimSpace(line[1 : len(line)-1])
			if ini[name] == nil {
				ini[name] = map[string]string{}
			}
			section, parent = ini[name], ""
			continue
		}
		if section == nil {
			return nil, fmt.Errorf("line %d: setting outside any [section]", lineNo)
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: want key = value", lineNo)
		}
		key := strings.ToLower(strings.TrimSpace(line[:i]))
		value := strings.TrimSpace(line[i+1:])
		if indented {
			if parent == "" {
				return nil, fmt.Errorf("line %d: indented line outside a nested block", lineNo)
			}
			section[parent+"."+key] = value
			continue
		}
		section[key] = value
		parent = ""
		if value == "" {
			parent = key
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ini, nil
}
