package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"nfyio.dev/storage/presign"
)

const keysUsage = `Usage: nfyio keys COMMAND [flags]

Manage the access keys of a running store through its admin API, with an
admin key found like nfyio presign finds its credentials.

Commands:
  create --name NAME --scopes S1,S2 [--bucket B]... [--prefix P] [--expires 720h]
         [--max-url-ttl 15m] [--max-object-size 10MiB] [--content-types 'image/*,application/pdf'] [--json]
  list [--json]
  show ID [--json]
  disable ID | enable ID | delete ID
  rotate ID [--json]

Scopes: read:objects write:objects delete:objects read:buckets write:buckets admin
`

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, rest := args[0], args[1:]
	fs := flag.NewFlagSet("nfyio keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	var spec struct {
		name, scopes, prefix, expires, maxTTL, maxSize, types string
		buckets                                               stringList
	}
	if sub == "create" {
		fs.StringVar(&spec.name, "name", "", "a name for the key")
		fs.StringVar(&spec.scopes, "scopes", "", "comma-separated scopes")
		fs.Var(&spec.buckets, "bucket", "restrict the key to this bucket (repeatable)")
		fs.StringVar(&spec.prefix, "prefix", "", "restrict the key to object keys under this prefix")
		fs.StringVar(&spec.expires, "expires", "", "key lifetime (720h, 30d) or an RFC 3339 time")
		fs.StringVar(&spec.maxTTL, "max-url-ttl", "", "longest presigned URL lifetime the key may sign")
		fs.StringVar(&spec.maxSize, "max-object-size", "", "largest upload a presigned URL of the key may carry (10MiB)")
		fs.StringVar(&spec.types, "content-types", "", "content types presigned uploads may use (image/*,application/pdf)")
	}
	args, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg, err := resolveClientConfig(*cf)
	if err != nil {
		fmt.Fprintf(stderr, "nfyio keys: %v\n", err)
		return 1
	}
	var (
		method = http.MethodGet
		path   = "keys"
		body   []byte
		id     string
	)
	switch sub {
	case "create":
		if spec.scopes == "" {
			fmt.Fprintln(stderr, "nfyio keys create: --scopes is required")
			return 2
		}
		req := map[string]any{"name": spec.name, "scopes": strings.Split(spec.scopes, ",")}
		if len(spec.buckets) > 0 {
			req["buckets"] = []string(spec.buckets)
		}
		for k, v := range map[string]string{"prefix": spec.prefix, "expires": spec.expires, "maxUrlTtl": spec.maxTTL, "maxObjectSize": spec.maxSize} {
			if v != "" {
				req[k] = v
			}
		}
		if spec.types != "" {
			req["contentTypes"] = strings.Split(spec.types, ",")
		}
		body, _ = json.Marshal(req)
		method = http.MethodPost
	case "list":
	case "show", "disable", "enable", "delete", "rotate":
		if len(args) != 1 {
			fmt.Fprintf(stderr, "nfyio keys %s: want exactly one key ID\n", sub)
			return 2
		}
		id = args[0]
		path = "keys/" + id
		switch sub {
		case "disable", "enable", "rotate":
			method, path = http.MethodPost, path+"/"+sub
		case "delete":
			method = http.MethodDelete
		}
	default:
		fmt.Fprintf(stderr, "nfyio keys: unknown command %q\n\n%s", sub, keysUsage)
		return 2
	}
	status, out, err := adminCall(cfg, method, path, body)
	if err != nil {
		fmt.Fprintf(stderr, "nfyio keys %s: %v\n", sub, err)
		return 1
	}
	if status >= 300 {
		var e struct{ Error, Message string }
		// The admin API answers in JSON; a request refused before it (bad
		// signature, unknown key) gets the store's S3 XML error.
		var xe struct{ Code, Message string }
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			fmt.Fprintf(stderr, "nfyio keys %s: %s: %s\n", sub, e.Error, e.Message)
		} else if xml.Unmarshal(out, &xe) == nil && xe.Code != "" {
			fmt.Fprintf(stderr, "nfyio keys %s: %s: %s\n", sub, xe.Code, xe.Message)
		} else {
			fmt.Fprintf(stderr, "nfyio keys %s: HTTP %d: %s\n", sub, status, strings.TrimSpace(string(out)))
		}
		return 1
	}
	if *asJSON || len(out) == 0 {
		_, _ = stdout.Write(out)
		return 0
	}
	return printKeys(stdout, sub, out)
}

// adminKey mirrors the admin API's JSON for printing.
type adminKey struct {
	AccessKeyID     string     `json:"accessKeyId"`
	SecretAccessKey string     `json:"secretAccessKey"`
	Name            string     `json:"name"`
	Status          string     `json:"status"`
	Scopes          []string   `json:"scopes"`
	Buckets         []string   `json:"buckets"`
	Prefix          string     `json:"prefix"`
	Created         time.Time  `json:"created"`
	Expires         *time.Time `json:"expires"`
	MaxURLTTL       string     `json:"maxUrlTtl"`
	MaxObjectSize   int64      `json:"maxObjectSize"`
	ContentTypes    []string   `json:"contentTypes"`
}

func printKeys(w io.Writer, sub string, out []byte) int {
	if sub == "list" {
		var list struct{ Keys []adminKey }
		if err := json.Unmarshal(out, &list); err != nil {
			fmt.Fprintf(w, "%s", out)
			return 0
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tSCOPES\tBUCKETS\tPREFIX")
		for _, k := range list.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Name, k.Status, strings.Join(k.Scopes, ","), strings.Join(k.Buckets, ","), k.Prefix)
		}
		tw.Flush()
		return 0
	}
	var k adminKey
	if err := json.Unmarshal(out, &k); err != nil {
		fmt.Fprintf(w, "%s", out)
		return 0
	}
	fmt.Fprintf(w, "AccessKeyId:      %s\n", k.AccessKeyID)
	if k.SecretAccessKey != "" {
		fmt.Fprintf(w, "SecretAccessKey:  %s\n(shown once: store it now)\n", k.SecretAccessKey)
	}
	fmt.Fprintf(w, "Name:             %s\nStatus:           %s\nScopes:           %s\n", k.Name, k.Status, strings.Join(k.Scopes, ","))
	if len(k.Buckets) > 0 {
		fmt.Fprintf(w, "Buckets:          %s\n", strings.Join(k.Buckets, ","))
	}
	if k.Prefix != "" {
		fmt.Fprintf(w, "Prefix:           %s\n", k.Prefix)
	}
	if k.Expires != nil {
		fmt.Fprintf(w, "Expires:          %s\n", k.Expires.Format(time.RFC3339))
	}
	if k.MaxURLTTL != "" {
		fmt.Fprintf(w, "MaxURLTTL:        %s\n", k.MaxURLTTL)
	}
	if k.MaxObjectSize > 0 {
		fmt.Fprintf(w, "MaxObjectSize:    %d\n", k.MaxObjectSize)
	}
	if len(k.ContentTypes) > 0 {
		fmt.Fprintf(w, "ContentTypes:     %s\n", strings.Join(k.ContentTypes, ","))
	}
	return 0
}

// adminCall sends one admin API request, presigned for a minute with the
// body's SHA-256 as a signed x-amz-content-sha256 header, so the store
// verifies the body it acts on.
func adminCall(cfg clientConfig, method, path string, body []byte) (int, []byte, error) {
	signer := presign.Signer{
		Endpoint:    cfg.Endpoint.String(),
		Region:      cfg.Region,
		Credentials: presign.Credentials{AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey, SessionToken: cfg.SessionToken},
	}
	sum := sha256.Sum256(body)
	hdr := http.Header{"X-Amz-Content-Sha256": {hex.EncodeToString(sum[:])}}
	if body != nil {
		hdr.Set("Content-Type", "application/json")
	}
	u, err := signer.Presign("_nfyio", "admin/"+path, presign.Options{Method: method, Expires: time.Minute, Headers: hdr})
	if err != nil {
		return 0, nil, fmt.Errorf("sign the admin request: %w", err)
	}
	req, err := http.NewRequest(method, u.URL, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range u.Headers {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("reach %s: %w", redactURL(u.URL), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, out, err
}

// redactURL drops the query (signature, credential) from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the store"
	}
	u.RawQuery = ""
	return u.String()
}
