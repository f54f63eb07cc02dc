package server

import (
	"context"
	"path/filepath"
	"strings"

	"nfyio.dev/storage/internal/storage"
	"nfyio.dev/storage/internal/storage/seaweedblob"
)

// openSeaweed opens the SeaweedFS blob store at seaweedfs://MASTER:PORT. Its
// journal of blobs written by this node (what lets the sweeper find orphans
// of crashes) lives in the data dir.
func openSeaweed(ctx context.Context, rawURL string, cfg Config) (storage.Blobs, error) {
	master := "http://" + strings.TrimPrefix(rawURL, "seaweedfs://")
	return seaweedblob.Open(ctx, master, seaweedblob.Options{
		JournalDir: filepath.Join(cfg.DataDir, "seaweedblob"),
		NoSync:     cfg.NoSync,
	})
}
