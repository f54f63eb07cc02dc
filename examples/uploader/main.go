// Command uploader is the "your server" half of direct browser uploads: a
// small web application that signs users in, hands their browser presigned
// URLs for nfyio storage, and never touches the file bytes itself. The
// browser PUTs the file straight to the store and downloads it from there.
//
// Configuration (flags override the environment):
//
//	NFYIO_STORAGE_ENDPOINT  store URL as browsers reach it (-endpoint), default http://127.0.0.1:9000
//	AWS_ACCESS_KEY_ID       access key the app signs with
//	AWS_SECRET_ACCESS_KEY   its secret
//	AWS_REGION              signing region (-region), default us-east-1
//	UPLOADER_BUCKET         bucket for the files (-bucket), default uploads
//	UPLOADER_ADDR           listen address (-addr), default 127.0.0.1:8080
//	UPLOADER_SESSION_SECRET key for session cookies; random per start when unset
//
// The bucket's CORS configuration must allow this application's origin
// (see README.md).
package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"nfyio.dev/storage/presign"
)

//go:embed static
var static embed.FS

const (
	uploadURLTTL   = 15 * time.Minute
	downloadURLTTL = time.Hour
	sessionTTL     = 12 * time.Hour
	sessionCookie  = "uploader_session"
	maxJSONBody    = 4 << 10
	maxFilename    = 200
	// maxListPages bounds one listing (1,000 keys a page).
	maxListPages = 10
)

// config is what the application needs to run.
type config struct {
	Endpoint   string // store URL as browsers reach it
	Region     string
	AccessKey  string
	SecretKey  string
	Bucket     string
	SessionKey []byte
}

// app serves the page and the API.
type app struct {
	cfg    config
	signer *presign.Signer
	client *http.Client
	now    func() time.Time
}

func newApp(cfg config) (*app, error) {
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("a bucket is required")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("storage endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
	}
	if len(cfg.SessionKey) == 0 {
		cfg.SessionKey = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionKey); err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
	}
	return &app{
		cfg: cfg,
		signer: &presign.Signer{
			Endpoint:    cfg.Endpoint,
			Region:      cfg.Region,
			Credentials: presign.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey},
		},
		client: &http.Client{Timeout: 30 * time.Second},
		now:    time.Now,
	}, nil
}

// routes is the application's whole HTTP surface.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	files, _ := fs.Sub(static, "static")
	mux.Handle("GET /", a.page(http.FileServerFS(files)))
	mux.HandleFunc("POST /api/login", a.login)
	mux.HandleFunc("POST /api/logout", a.logout)
	mux.HandleFunc("GET /api/me", a.withUser(a.me))
	mux.HandleFunc("POST /api/get-upload-url", a.withUser(a.uploadURL))
	mux.HandleFunc("GET /api/get-download-url", a.withUser(a.downloadURL))
	mux.HandleFunc("GET /api/files", a.withUser(a.files))
	return mux
}

// page serves the static files with a policy that lets the page talk to
// this server and to the store, and nothing else.
func (a *app) page(files http.Handler) http.Handler {
	u, _ := url.Parse(a.cfg.Endpoint)
	storeOrigin := u.Scheme + "://" + u.Host
	csp := "default-src 'self'; connect-src 'self' " + storeOrigin + "; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", csp)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// URLs stay readable: '&' is not escaped as \u0026.
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// readJSON decodes a small JSON body. Requiring application/json means a
// cross-site HTML form cannot call the API with the user's cookie.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON request: "+err.Error())
		return false
	}
	return true
}

var userName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// sessionValue is "user|expiry-unix|hmac", the HMAC over the first two.
func (a *app) sessionValue(user string, expires time.Time) string {
	payload := user + "|" + strconv.FormatInt(expires.Unix(), 10)
	m := hmac.New(sha256.New, a.cfg.SessionKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionUser returns the signed-in user, "" when there is none.
func (a *app) sessionUser(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	p64, s64, ok := strings.Cut(c.Value, ".")
	if !ok {
		return ""
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p64)
	sig, err2 := base64.RawURLEncoding.DecodeString(s64)
	if err1 != nil || err2 != nil {
		return ""
	}
	m := hmac.New(sha256.New, a.cfg.SessionKey)
	m.Write(payload)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return ""
	}
	user, exp, _ := strings.Cut(string(payload), "|")
	unix, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !a.now().Before(time.Unix(unix, 0)) || !userName.MatchString(user) {
		return ""
	}
	return user
}

func (a *app) withUser(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := a.sessionUser(r)
		if user == "" {
			writeError(w, http.StatusUnauthorized, "sign in first")
			return
		}
		h(w, r, user)
	}
}

// login signs a user in by name. A demonstration: a real application
// checks a password or an identity provider here.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		User string `json:"user"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	if !userName.MatchString(in.User) {
		writeError(w, http.StatusBadRequest, "user names are 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit")
		return
	}
	expires := a.now().Add(sessionTTL)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: a.sessionValue(in.User, expires), Path: "/",
		Expires: expires, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	writeJSON(w, http.StatusOK, map[string]string{"user": in.User})
}

func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (a *app) me(w http.ResponseWriter, r *http.Request, user string) {
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "bucket": a.cfg.Bucket})
}

func userPrefix(user string) string { return "users/" + user + "/" }

// cleanFilename keeps the last path element of a browser-supplied name and
// refuses names that would make confusing keys.
func cleanFilename(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "" || name == "." || name == "..":
		return "", errors.New("the file needs a name")
	case len(name) > maxFilename:
		return "", fmt.Errorf("file names are at most %d bytes", maxFilename)
	case !utf8.ValidString(name):
		return "", errors.New("the file name is not valid UTF-8")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", errors.New("the file name contains a control character")
		}
	}
	return name, nil
}

// uploadURL mints a PUT URL for one file under the user's prefix. The
// Content-Type is signed: the browser must send exactly the type it
// announced, so the stored object's type is the one the app approved.
func (a *app) uploadURL(w http.ResponseWriter, r *http.Request, user string) {
	var in struct {
		Filename    string `json:"filename"`
		ContentType string `json:"contentType"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	name, err := cleanFilename(in.Filename)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ct := in.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.Contains(mt, "/") {
		writeError(w, http.StatusBadRequest, "content type "+strconv.Quote(ct)+" is not a media type")
		return
	}
	key := userPrefix(user) + name
	u, err := a.signer.Presign(a.cfg.Bucket, key, presign.Options{Method: http.MethodPut, Expires: uploadURLTTL, ContentType: ct})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	headers := map[string]string{}
	for k, v := range u.Headers {
		headers[k] = v[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"url": u.URL, "method": u.Method, "key": key, "headers": headers, "expires": u.Expires.UTC().Format(time.RFC3339),
	})
}

// downloadURL mints a GET URL, only for the user's own files.
func (a *app) downloadURL(w http.ResponseWriter, r *http.Request, user string) {
	key := r.URL.Query().Get("key")
	if !strings.HasPrefix(key, userPrefix(user)) || len(key) == len(userPrefix(user)) {
		writeError(w, http.StatusForbidden, "that file is not yours")
		return
	}
	name := key[len(userPrefix(user)):]
	u, err := a.signer.Presign(a.cfg.Bucket, key, presign.Options{
		Expires:                    downloadURLTTL,
		ResponseContentDisposition: "attachment; filename*=UTF-8''" + rfc5987(name),
	})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"url": u.URL, "expires": u.Expires.UTC().Format(time.RFC3339)})
}

// rfc5987 percent-encodes a filename* value: every byte but the RFC's
// attr-char set, so ';' or ',' in a name cannot end the parameter.
func rfc5987(s string) string {
	const attrChar = "!#$&+-.^_`|~"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(attrChar, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

type listResult struct {
	Contents []struct {
		Key          string `xml:"Key"`
		Size         int64  `xml:"Size"`
		LastModified string `xml:"LastModified"`
	} `xml:"Contents"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
}

type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type fileEntry struct {
	Key          string `json:"key"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	LastModified string `json:"lastModified"`
}

// files lists the user's files with presigned ListObjectsV2 requests made
// from this server: the browser never lists the bucket itself.
func (a *app) files(w http.ResponseWriter, r *http.Request, user string) {
	prefix := userPrefix(user)
	out := []fileEntry{}
	token := ""
	for range maxListPages {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		page, err := a.listPage(r.Context(), q)
		if err != nil {
			writeError(w, http.StatusBadGateway, "listing failed: "+err.Error())
			return
		}
		for _, c := range page.Contents {
			out = append(out, fileEntry{Key: c.Key, Name: strings.TrimPrefix(c.Key, prefix), Size: c.Size, LastModified: c.LastModified})
		}
		if !page.IsTruncated || page.NextContinuationToken == "" {
			break
		}
		token = page.NextContinuationToken
	}
	writeJSON(w, http.StatusOK, map[string]any{"files": out})
}

func (a *app) listPage(ctx context.Context, q url.Values) (*listResult, error) {
	u, err := a.signer.Presign(a.cfg.Bucket, "", presign.Options{Expires: time.Minute, Query: q})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read listing: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e s3Error
		if xml.Unmarshal(body, &e) == nil && e.Code != "" {
			return nil, fmt.Errorf("%s: %s", e.Code, e.Message)
		}
		return nil, fmt.Errorf("store answered %s", resp.Status)
	}
	var page listResult
	if err := xml.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("decode listing: %w", err)
	}
	return &page, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func main() {
	var cfg config
	addr := flag.String("addr", envOr("UPLOADER_ADDR", "127.0.0.1:8080"), "listen address (UPLOADER_ADDR)")
	flag.StringVar(&cfg.Endpoint, "endpoint", envOr("NFYIO_STORAGE_ENDPOINT", "http://127.0.0.1:9000"), "storage URL as browsers reach it (NFYIO_STORAGE_ENDPOINT)")
	flag.StringVar(&cfg.Bucket, "bucket", envOr("UPLOADER_BUCKET", "uploads"), "bucket for the files (UPLOADER_BUCKET)")
	flag.StringVar(&cfg.Region, "region", envOr("AWS_REGION", "us-east-1"), "signing region (AWS_REGION)")
	flag.Parse()
	cfg.AccessKey = os.Getenv("AWS_ACCESS_KEY_ID")
	cfg.SecretKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
	if s := os.Getenv("UPLOADER_SESSION_SECRET"); s != "" {
		cfg.SessionKey = []byte(s)
	}
	a, err := newApp(cfg)
	if err != nil {
		log.Fatalf("uploader: %v", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("uploader: %v", err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	// Tests and scripts read this line to learn the port of -addr :0.
	fmt.Printf("uploader listening on http://%s (storage %s, bucket %s)\n", ln.Addr(), cfg.Endpoint, cfg.Bucket)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("uploader: %v", err)
	}
}
