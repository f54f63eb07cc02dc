package seaweedblob

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"nfyio.dev/storage/internal/storage"
)

// locationTTL bounds how long a volume's locations are trusted without an
// error: volumes move rarely (balancing, a replaced server), and any failed
// request drops the entry at once.
const locationTTL = 10 * time.Minute

// maxAnswer bounds the JSON answers read from SeaweedFS.
const maxAnswer = 1 << 20

// errVolumeUnknown: the master knows no location for a volume. That is not
// proof that a blob is gone (its server may be down), so callers never treat
// it as "not found".
var errVolumeUnknown = errors.New("volume unknown to the master")

type assignment struct {
	chunk
	fid string
	url string // volume server base URL
}

// assign asks the master for a new file id. A master that has no writable
// volume left for the collection answers "no free volumes" (406) or, while
// it tries to grow one, "no writable volumes" (503, retry later); both end
// as storage.ErrStorageFull once retrying is pointless.
func (s *Store) assign(ctx context.Context, dataSize int64) (assignment, error) {
	q := url.Values{"count": {"1"}, "replication": {s.opts.Replication}}
	if s.opts.Collection != "" {
		q.Set("collection", s.opts.Collection)
	}
	if dataSize > 0 {
		// Lets the master pick a volume with room for the chunk.
		q.Set("dataSize", strconv.FormatInt(dataSize, 10))
	}
	u := s.master + "/dir/assign?" + q.Encode()
	for attempt := 1; ; attempt++ {
		var ans struct {
			Fid   string `json:"fid"`
			URL   string `json:"url"`
			Error string `json:"error"`
		}
		status, retryAfter, err := s.getJSON(ctx, u, &ans)
		if err != nil {
			return assignment{}, fmt.Errorf("seaweedblob: assign at %s: %w", s.master, err)
		}
		if status == http.StatusOK && ans.Error == "" && ans.Fid != "" && ans.URL != "" {
			c, err := parseFid(ans.Fid)
			if err != nil {
				return assignment{}, fmt.Errorf("seaweedblob: assign at %s: %w", s.master, err)
			}
			return assignment{chunk: c, fid: ans.Fid, url: s.volumeBase(ans.URL)}, nil
		}
		msg := ans.Error
		if msg == "" {
			msg = "HTTP " + strconv.Itoa(status)
		}
		full := strings.Contains(msg, "no free volumes") || strings.Contains(msg, "no writable volumes") ||
			strings.Contains(msg, "No writable volumes")
		if status == http.StatusServiceUnavailable && attempt < 3 {
			// Volume growth in progress or master warming up: it says when.
			if err := sleepCtx(ctx, min(max(retryAfter, 200*time.Millisecond), 2*time.Second)); err != nil {
				return assignment{}, fmt.Errorf("seaweedblob: assign at %s: %s: %w", s.master, msg, err)
			}
			continue
		}
		if full {
			return assignment{}, fmt.Errorf("seaweedblob: assign at %s (collection %q, replication %s): %s: %w",
				s.master, s.opts.Collection, s.opts.Replication, msg, storage.ErrStorageFull)
		}
		return assignment{}, fmt.Errorf("seaweedblob: assign at %s: %s", s.master, msg)
	}
}

type locEntry struct {
	urls []string
	at   time.Time
}

// locate returns the base URLs of the volume servers holding volume vid,
// from the cache when it is fresh.
func (s *Store) locate(ctx context.Context, vid uint32) ([]string, error) {
	s.locMu.Lock()
	e, ok := s.locs[vid]
	s.locMu.Unlock()
	if ok && time.Since(e.at) < locationTTL {
		return e.urls, nil
	}
	var ans struct {
		Locations []struct {
			URL string `json:"url"`
		} `json:"locations"`
		Error string `json:"error"`
	}
	u := s.master + "/dir/lookup?volumeId=" + strconv.FormatUint(uint64(vid), 10)
	status, _, err := s.getJSON(ctx, u, &ans)
	if err != nil {
		return nil, fmt.Errorf("seaweedblob: look up volume %d at %s: %w", vid, s.master, err)
	}
	if status == http.StatusNotFound || (status == http.StatusOK && len(ans.Locations) == 0) {
		return nil, fmt.Errorf("seaweedblob: volume %d: %s: %w", vid, ans.Error, errVolumeUnknown)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("seaweedblob: look up volume %d at %s: HTTP %d %s", vid, s.master, status, ans.Error)
	}
	urls := make([]string, 0, len(ans.Locations))
	for _, l := range ans.Locations {
		urls = append(urls, s.volumeBase(l.URL))
	}
	s.locMu.Lock()
	s.locs[vid] = locEntry{urls: urls, at: time.Now()}
	s.locMu.Unlock()
	return urls, nil
}

// forget drops a volume's cached locations after a request to them failed.
func (s *Store) forget(vid uint32) {
	s.locMu.Lock()
	delete(s.locs, vid)
	s.locMu.Unlock()
}

// volumeBase turns a "host:port" the master reports into a base URL with
// the master's scheme: a cluster runs TLS everywhere or nowhere.
func (s *Store) volumeBase(hostport string) string {
	if strings.Contains(hostport, "://") {
		return strings.TrimSuffix(hostport, "/")
	}
	return s.scheme + "://" + hostport
}

// getJSON GETs u and decodes a JSON answer of any status into v. It returns
// the status and the Retry-After delay (0 when absent).
func (s *Store) getJSON(ctx context.Context, u string, v any) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, 0, fmt.Errorf("reading answer: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return 0, 0, fmt.Errorf("HTTP %d with an unreadable answer %q: %w", resp.StatusCode, abbrev(string(body)), err)
	}
	var wait time.Duration
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		wait = time.Duration(secs) * time.Second
	}
	return resp.StatusCode, wait, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ping asks the master for the cluster status: it answers only when it is
// up, and names a leader only when it can hand out file ids.
func (s *Store) ping(ctx context.Context) error {
	var ans struct {
		Leader string `json:"Leader"`
	}
	status, _, err := s.getJSON(ctx, s.master+"/cluster/status", &ans)
	if err != nil {
		return fmt.Errorf("seaweedblob: master %s: %w", s.master, err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("seaweedblob: master %s: cluster status HTTP %d", s.master, status)
	}
	if ans.Leader == "" {
		return fmt.Errorf("seaweedblob: master %s has no leader", s.master)
	}
	return nil
}
