package server

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"nfyio.dev/storage/internal/admin"
	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/seaweedblob"
)

// seaweedURL is a parsed seaweedfs:// blob store URL:
//
//	seaweedfs://MASTER:PORT[?replication=001&collection=NAME&chunkSize=8MiB]
//
// replication is SeaweedFS's placement code for new volumes (default "000",
// one copy: set it to match the volume servers you run), collection groups
// the store's volumes apart from other users of the cluster, chunkSize is the
// largest SeaweedFS file a blob is cut into (bytes, or with a KiB/MiB unit).
type seaweedURL struct {
	master string // http://MASTER:PORT
	opts   seaweedblob.Options
}

// parseSeaweedURL parses rawURL. Unknown parameters are refused: a typo
// such as "replicaton=001" must not silently leave blobs with one copy.
func parseSeaweedURL(rawURL string) (seaweedURL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return seaweedURL{}, fmt.Errorf("blob store URL: %w", err)
	}
	if u.Scheme != "seaweedfs" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return seaweedURL{}, fmt.Errorf("blob store URL %q: want seaweedfs://MASTER:PORT[?replication=001&collection=NAME&chunkSize=8MiB]", rawURL)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return seaweedURL{}, fmt.Errorf("blob store URL %q: %w", rawURL, err)
	}
	out := seaweedURL{master: "http://" + u.Host}
	for name, vals := range q {
		if len(vals) != 1 {
			return seaweedURL{}, fmt.Errorf("blob store URL %q: parameter %s given %d times", rawURL, name, len(vals))
		}
		v := vals[0]
		switch name {
		case "replication":
			// seaweedblob.Open checks the form (three digits).
			out.opts.Replication = v
		case "collection":
			if v == "" || strings.ContainsAny(v, "/?&#, ") {
				return seaweedURL{}, fmt.Errorf("blob store URL %q: collection %q: want a plain name", rawURL, v)
			}
			out.opts.Collection = v
		case "chunkSize":
			n, err := admin.ParseSize(v)
			if err != nil || n <= 0 {
				return seaweedURL{}, fmt.Errorf("blob store URL %q: chunkSize %q: want a positive size such as 8MiB", rawURL, v)
			}
			out.opts.ChunkSize = n
		default:
			return seaweedURL{}, fmt.Errorf("blob store URL %q: unknown parameter %q (known: replication, collection, chunkSize)", rawURL, name)
		}
	}
	return out, nil
}

// openSeaweed opens the SeaweedFS blob store a seaweedfs:// URL names. Its
// journal of blobs written by this node (what lets fsck find orphans of
// crashes) lives in the data dir.
func openSeaweed(ctx context.Context, rawURL string, cfg Config) (storage.Blobs, error) {
	su, err := parseSeaweedURL(rawURL)
	if err != nil {
		return nil, err
	}
	opts := su.opts
	opts.JournalDir = filepath.Join(cfg.DataDir, "seaweedblob")
	opts.NoSync = cfg.NoSync
	return seaweedblob.Open(ctx, su.master, opts)
}
