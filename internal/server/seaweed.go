package server

import (
	"context"
	"errors"

	"nfyio.dev/storage/internal/storage"
)

// openSeaweed is replaced when the SeaweedFS backend is wired in.
func openSeaweed(ctx context.Context, url string) (storage.Blobs, error) {
	return nil, errors.New("seaweedfs blobs are not available in this build")
}
