package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"nfyio.dev/storage/presign"
)

// Exit codes of client subcommands: the command line is wrong (usage), or
// the command could not do its work (configuration, signing).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const maxExpiresIn = 604800 // seconds: SigV4's 7-day limit

// usageError marks a command-line mistake (exit 2) as opposed to a failure
// to carry the command out (exit 1).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

const presignUsage = `usage: nfyio presign [flags] s3://BUCKET/KEY

Prints a presigned URL for one object, like "aws s3 presign".

flags:
`

const presignPostUsage = `usage: nfyio presign-post [flags] s3://BUCKET/KEY-OR-PREFIX

Prints JSON {"url": ..., "fields": {...}} for an HTML-form (POST) upload:
post the fields, then the file as the last field named "file", to url.
KEY may contain ${filename}. With --key-starts-with, KEY-OR-PREFIX is a
prefix and the form may choose any key under it.

flags:
`

// runPresign implements "nfyio presign".
func runPresign(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nfyio presign", flag.ContinueOnError)
	expiresIn := fs.Int("expires-in", 3600, "seconds the URL is valid, 1..604800")
	method := fs.String("method", "get", "HTTP method the URL is for: get, put, head or delete")
	contentType := fs.String("content-type", "", "put: Content-Type the uploader must send (signed)")
	contentLength := fs.Int64("content-length", 0, "put: exact body size in bytes the uploader must send (signed)")
	disposition := fs.String("response-content-disposition", "", "get/head: Content-Disposition of the response")
	respType := fs.String("response-content-type", "", "get/head: Content-Type of the response")
	once := fs.Bool("once", false, "make the URL single-use")
	cf := addClientFlags(fs)

	return runClientCommand(fs, presignUsage, args, stdout, stderr, func(bucket, key string) error {
		if key == "" {
			return usagef("the S3 URI must name an object: s3://BUCKET/KEY")
		}
		expires, err := expiresFlag(*expiresIn)
		if err != nil {
			return err
		}
		m := strings.ToUpper(*method)
		switch m {
		case http.MethodGet, http.MethodPut, http.MethodHead, http.MethodDelete:
		default:
			return usagef("--method %q: want get, put, head or delete", *method)
		}
		if m != http.MethodPut && (*contentType != "" || *contentLength != 0) {
			return usagef("--content-type and --content-length apply to --method put")
		}
		if *contentLength < 0 {
			return usagef("--content-length must not be negative")
		}
		if m != http.MethodGet && m != http.MethodHead && (*disposition != "" || *respType != "") {
			return usagef("--response-content-* apply to --method get or head")
		}
		signer, err := newSigner(*cf)
		if err != nil {
			return err
		}
		u, err := signer.Presign(bucket, key, presign.Options{
			Method:                     m,
			Expires:                    expires,
			ContentType:                *contentType,
			ContentLength:              *contentLength,
			ResponseContentDisposition: *disposition,
			ResponseContentType:        *respType,
			Once:                       *once,
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, u.URL)
		return err
	})
}

// runPresignPost implements "nfyio presign-post".
func runPresignPost(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nfyio presign-post", flag.ContinueOnError)
	expiresIn := fs.Int("expires-in", 3600, "seconds the form is valid, 1..604800")
	contentType := fs.String("content-type", "", "Content-Type the form must send")
	contentTypePrefix := fs.String("content-type-starts-with", "", "allow any Content-Type with this prefix, e.g. image/")
	minSize := fs.Int64("min-size", 0, "smallest file accepted, in bytes")
	maxSize := fs.Int64("max-size", 0, "largest file accepted, in bytes (0: no limit below 5 GiB unless --min-size)")
	keyStartsWith := fs.Bool("key-starts-with", false, "treat KEY-OR-PREFIX as a prefix: any key under it is allowed")
	status := fs.Int("success-action-status", 0, "status of a successful upload: 200, 201 or 204 (default 204)")
	cf := addClientFlags(fs)

	return runClientCommand(fs, presignPostUsage, args, stdout, stderr, func(bucket, key string) error {
		expires, err := expiresFlag(*expiresIn)
		if err != nil {
			return err
		}
		if *minSize < 0 || *maxSize < 0 {
			return usagef("--min-size and --max-size must not be negative")
		}
		if *maxSize > 0 && *minSize > *maxSize {
			return usagef("--min-size %d is above --max-size %d", *minSize, *maxSize)
		}
		switch *status {
		case 0, 200, 201, 204:
		default:
			return usagef("--success-action-status %d: want 200, 201 or 204", *status)
		}
		o := presign.PostOptions{
			Expires:               expires,
			ContentType:           *contentType,
			ContentTypeStartsWith: *contentTypePrefix,
			MinSize:               *minSize,
			MaxSize:               *maxSize,
			SuccessActionStatus:   *status,
		}
		if *keyStartsWith {
			o.KeyStartsWith = key
		} else {
			o.Key = key
		}
		signer, err := newSigner(*cf)
		if err != nil {
			return err
		}
		post, err := signer.PresignPost(bucket, o)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			URL    string            `json:"url"`
			Fields map[string]string `json:"fields"`
		}{post.URL, post.Fields})
	})
}

// runClientCommand parses args (flags may come before or after the S3 URI,
// as with the AWS CLI), runs do and maps its error to an exit code.
func runClientCommand(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer, do func(bucket, key string) error) int {
	// The flag package would print errors and usage itself; do it here so
	// that help goes to stdout and errors to stderr.
	fs.SetOutput(io.Discard)
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one s3://BUCKET/KEY argument, got %d", len(pos))
	}
	var bucket, key string
	if err == nil {
		bucket, key, err = parseS3URI(pos[0])
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		printUsage(stderr)
		return exitUsage
	}
	if err := do(bucket, key); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		if errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// parseInterspersed parses flags found anywhere in args and returns the
// positional arguments. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// parseS3URI splits s3://BUCKET/KEY. The key is taken verbatim (no
// percent-decoding), as the AWS CLI does.
func parseS3URI(s string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/KEY URI", s)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q has no bucket", s)
	}
	return bucket, key, nil
}

func expiresFlag(seconds int) (time.Duration, error) {
	if seconds < 1 || seconds > maxExpiresIn {
		return 0, usagef("--expires-in %d: want 1..%d seconds", seconds, maxExpiresIn)
	}
	return time.Duration(seconds) * time.Second, nil
}

// newSigner resolves the client configuration into a presign.Signer.
func newSigner(cf clientFlags) (*presign.Signer, error) {
	cfg, err := resolveClientConfig(cf)
	if err != nil {
		return nil, err
	}
	return &presign.Signer{
		Endpoint: cfg.Endpoint.String(),
		Region:   cfg.Region,
		Credentials: presign.Credentials{
			AccessKeyID:     cfg.AccessKeyID,
			SecretAccessKey: cfg.SecretAccessKey,
			SessionToken:    cfg.SessionToken,
		},
		VirtualHosted: !cfg.PathStyle,
	}, nil
}
