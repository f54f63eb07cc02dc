// Package browser_test drives a real headless Chromium through the example
// uploader: the page on one origin signs in, uploads a file straight to
// nfyio storage on another origin with a presigned PUT (CORS preflight and
// all), lists and downloads it, and shows the browser's refusal once the
// bucket's CORS rules no longer allow the page.
//
// It runs when Chromium is found (or NFYIO_BROWSER_TESTS=1), and fails
// instead of skipping when NFYIO_REQUIRE_BROWSER=1 and Chromium is missing.
// Debian: apt-get install -y chromium. NFYIO_CHROMIUM names another binary.
package browser_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/chromedp/chromedp"

	"nfyio.dev/storage/internal/iam"
	"nfyio.dev/storage/internal/s3test"
)

// findChromium returns the browser to drive, "" when there is none.
func findChromium() string {
	if p := os.Getenv("NFYIO_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func requireChromium(t *testing.T) string {
	t.Helper()
	path := findChromium()
	if path != "" {
		return path
	}
	if os.Getenv("NFYIO_REQUIRE_BROWSER") == "1" || os.Getenv("NFYIO_BROWSER_TESTS") == "1" {
		t.Fatal("Chromium not found (apt-get install -y chromium, or set NFYIO_CHROMIUM)")
	}
	t.Skip("Chromium not found; set NFYIO_BROWSER_TESTS=1 to insist")
	return ""
}

// startUploader builds and runs examples/uploader, returning its URL.
func startUploader(t *testing.T, env []string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "uploader")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds the uploader: %v", err)
	}
	build := exec.Command(gobin, "build", "-o", bin, "nfyio.dev/storage/examples/uploader")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build uploader: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "UPLOADER_ADDR=127.0.0.1:0"}, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		// "uploader listening on http://127.0.0.1:PORT (...)"
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[3], "http://") {
			t.Fatalf("unexpected uploader output %q", line)
		}
		return f[3]
	case <-time.After(30 * time.Second):
		t.Fatalf("uploader did not start: %s", stderr.String())
	}
	return ""
}

func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1000, 900),
		// Loopback only: no proxy from this machine's environment.
		chromedp.Flag("no-proxy-server", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a bound, so a broken page fails the test
// instead of hanging it.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v\npage status: %s", what, err, statusText(ctx))
	}
}

func statusText(ctx context.Context) string {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.getElementById("status").textContent`))
	return s
}

// waitStatus waits until the page's status line contains want.
func waitStatus(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	js := fmt.Sprintf(`document.getElementById("status").textContent.includes(%q) && document.getElementById("status").textContent`, want)
	got, err := chromedp.Run(c, chromedp.Poll[string](js, chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		t.Fatalf("status never contained %q: %v; it says %q", want, err, statusText(ctx))
	}
	return got
}

func writeFile(t *testing.T, name string, size int) (string, []byte) {
	t.Helper()
	content := make([]byte, size)
	_, _ = rand.Read(content)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, content
}

func TestBrowserUploadDownloadAndCORS(t *testing.T) {
	exe := requireChromium(t)
	s3test.NoEnv(t)
	store := s3test.Start(t)
	sdk := store.SDK(t)
	ctx := context.Background()
	const bucket = "browser-uploads"
	if _, err := sdk.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	appKey, appSecret, err := store.Srv.Keys().Create(ctx, iam.KeySpec{
		Name: "uploader", Scopes: []string{iam.ScopeReadObjects, iam.ScopeWriteObjects}, Buckets: []string{bucket},
	})
	if err != nil {
		t.Fatal(err)
	}
	appURL := startUploader(t, []string{
		"NFYIO_STORAGE_ENDPOINT=" + store.URL,
		"AWS_ACCESS_KEY_ID=" + appKey.ID,
		"AWS_SECRET_ACCESS_KEY=" + appSecret,
		"UPLOADER_BUCKET=" + bucket,
	})
	if appURL == store.URL {
		t.Fatal("the page and the store must be on different origins")
	}
	setCORS := func(origins ...string) {
		t.Helper()
		_, err := sdk.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(bucket), CORSConfiguration: &types.CORSConfiguration{
			CORSRules: []types.CORSRule{{
				AllowedOrigins: origins, AllowedMethods: []string{"GET", "PUT", "HEAD"},
				AllowedHeaders: []string{"*"}, ExposeHeaders: []string{"ETag"},
			}},
		}})
		if err != nil {
			t.Fatalf("PutBucketCors: %v", err)
		}
	}
	setCORS(appURL)

	b := newBrowser(t, exe)
	step(t, b, "open the page and sign in",
		chromedp.Navigate(appURL),
		chromedp.WaitVisible(chromedp.CSS("#user")),
		chromedp.SendKeys(chromedp.CSS("#user"), "alice"),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("#upload-section")),
		chromedp.WaitVisible(chromedp.CSS("#files-section")),
	)

	// Upload: the page asks the app for a URL, then PUTs straight to the
	// store; progress ends at 100% and the file is listed.
	path, content := writeFile(t, "photo.bin", 3<<20+123)
	step(t, b, "choose and upload a file",
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}),
		chromedp.Click(chromedp.CSS("#upload")),
	)
	waitStatus(t, b, "Uploaded photo.bin")
	pct, err := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("progress-text").textContent + " " + document.getElementById("progress").value`))
	if err != nil || pct != "100% 100" {
		t.Fatalf("progress %q %v, want 100%%", pct, err)
	}
	step(t, b, "see the file listed", chromedp.WaitVisible(chromedp.CSS(`li[data-name="photo.bin"]`)))
	stored, err := sdk.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("users/alice/photo.bin")})
	if err != nil {
		t.Fatalf("the upload is not in the store: %v", err)
	}
	got, _ := io.ReadAll(stored.Body)
	stored.Body.Close()
	if !bytes.Equal(got, content) {
		t.Fatalf("stored %d bytes differ from the %d uploaded", len(got), len(content))
	}

	// Download: the page gets a presigned GET; the page itself can fetch it
	// across origins, and the bytes are the file's.
	step(t, b, "get the download link",
		chromedp.Click(chromedp.CSS(`li[data-name="photo.bin"] button.get-link`)),
		chromedp.WaitVisible(chromedp.CSS(`li[data-name="photo.bin"] a.download-link`)),
	)
	href, err := chromedp.Run(b, chromedp.AttributeValue(chromedp.CSS(`li[data-name="photo.bin"] a.download-link`), "href"))
	if err != nil || !strings.HasPrefix(href.Value, store.URL+"/"+bucket+"/users/alice/photo.bin?") {
		t.Fatalf("download link %q %v", href.Value, err)
	}
	resp, err := http.Get(href.Value)
	if err != nil {
		t.Fatal(err)
	}
	dl, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(dl, content) {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(dl))
	}
	fetched, err := chromedp.Run(b, chromedp.Evaluate[int](
		fmt.Sprintf(`fetch(%q).then(r => r.ok ? r.arrayBuffer() : Promise.reject(r.status)).then(b => b.byteLength)`, href.Value),
		chromedp.EvalAwaitPromise))
	if err != nil || fetched != len(content) {
		t.Fatalf("cross-origin fetch from the page: %d bytes, %v", fetched, err)
	}

	// With CORS allowing the page, a refusal by the store is readable:
	// the page shows S3's error code.
	if err := store.Srv.Keys().Disable(ctx, appKey.ID); err != nil {
		t.Fatal(err)
	}
	path2, _ := writeFile(t, "refused.bin", 1000)
	step(t, b, "upload with a disabled key",
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path2}),
		chromedp.Click(chromedp.CSS("#upload")),
	)
	waitStatus(t, b, "Upload refused by the storage server: InvalidAccessKeyId")
	if err := store.Srv.Keys().Enable(ctx, appKey.ID); err != nil {
		t.Fatal(err)
	}

	// Remove the page's origin: the preflight is refused, the browser
	// blocks the upload, and the page says so.
	setCORS("https://elsewhere.example.com")
	path3, _ := writeFile(t, "blocked.bin", 2000)
	step(t, b, "upload with the origin removed",
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path3}),
		chromedp.Click(chromedp.CSS("#upload")),
	)
	waitStatus(t, b, "blocked by the browser (CORS?)")
	for _, key := range []string{"users/alice/blocked.bin", "users/alice/refused.bin"} {
		if _, err := sdk.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err == nil {
			t.Fatalf("%s was stored", key)
		}
	}
	// NFYIO_BROWSER_SCREENSHOT=file.png keeps a picture of the final page
	// (the listed file and the CORS message) for a human to look at.
	if p := os.Getenv("NFYIO_BROWSER_SCREENSHOT"); p != "" {
		shot, err := chromedp.Run(b, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(p, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the page after the blocked upload: %s", p)
	}
}
