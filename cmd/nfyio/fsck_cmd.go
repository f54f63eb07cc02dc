package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"nfyio.dev/storage/internal/fsck"
	"nfyio.dev/storage/internal/server"
)

// runFsck checks the embedded store of a data directory. Exit status: 0
// clean, 1 problems found (or orphans left in place), 2 could not check.
func runFsck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nfyio fsck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: nfyio fsck [--data DIR | --meta URL --blobs URL] [--repair] [--grace DURATION] [--verify-content]

Checks that every object record and uploaded part points at an existing blob
of the recorded size, and that every blob is referenced. The embedded store
(the default) is checked while no server runs on DIR: fsck takes its locks.
Shared stores (--meta postgres://..., --blobs seaweedfs://...) are checked
live; --grace then protects blobs of writes in flight.
With --repair, blobs no record references (left by a crash) and older than
--grace are deleted. Records whose blobs are missing are reported, never
deleted. Exit status: 0 clean, 1 problems found, 2 error.

`)
		fs.PrintDefaults()
	}
	dataDir := fs.String("data", envString("NFYIO_DATA_DIR", "data"), "data directory (NFYIO_DATA_DIR)")
	metaURL := fs.String("meta", envString("NFYIO_META", ""), "metadata store as for nfyio server; empty for the embedded one (NFYIO_META)")
	blobsURL := fs.String("blobs", envString("NFYIO_BLOBS", ""), "blob store as for nfyio server; empty for files in the data dir (NFYIO_BLOBS)")
	repair := fs.Bool("repair", false, "delete orphan blobs older than --grace")
	grace := fs.Duration("grace", fsck.DefaultGrace, "orphans younger than this are kept by --repair; 0 deletes them all, safe only for the embedded store (fsck holds its lock, so no server is writing)")
	verify := fs.Bool("verify-content", false, "read every blob and compare it with the recorded ETag and checksums")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "nfyio fsck: unexpected arguments %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	if *grace < 0 {
		fmt.Fprintln(stderr, "nfyio fsck: --grace must not be negative")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var store *fsck.Store
	if *metaURL == "" && *blobsURL == "" {
		e, err := fsck.OpenEmbedded(*dataDir)
		if err != nil {
			fmt.Fprintf(stderr, "nfyio fsck: %v\n", err)
			return 2
		}
		store = e
	} else {
		meta, blobs, err := server.OpenStores(ctx, server.Config{DataDir: *dataDir, Meta: *metaURL, Blobs: *blobsURL})
		if err != nil {
			fmt.Fprintf(stderr, "nfyio fsck: %v\n", err)
			return 2
		}
		store = &fsck.Store{Meta: meta, Blobs: blobs}
	}
	defer store.Close()

	rep, err := fsck.Check(ctx, store.Meta, store.Blobs, fsck.Options{Repair: *repair, Grace: *grace, VerifyContent: *verify})
	if err != nil {
		fmt.Fprintf(stderr, "nfyio fsck: %v\n", err)
		return 2
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, p)
	}
	kept := 0
	for _, o := range rep.Orphans {
		switch {
		case o.Deleted:
			fmt.Fprintf(stdout, "orphan blob %s (modified %s): deleted\n", o.Blob, o.Modified.UTC().Format(time.RFC3339))
		case o.Err != nil:
			kept++
			fmt.Fprintf(stdout, "orphan blob %s (modified %s): delete failed: %v\n", o.Blob, o.Modified.UTC().Format(time.RFC3339), o.Err)
		default:
			kept++
			fmt.Fprintf(stdout, "orphan blob %s (modified %s)\n", o.Blob, o.Modified.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintln(stdout, rep.Summary())
	if kept > 0 && !*repair {
		fmt.Fprintln(stdout, "run with --repair to delete orphan blobs")
	} else if kept > 0 {
		fmt.Fprintf(stdout, "orphans younger than --grace %v were kept\n", *grace)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(stdout, "records with missing or damaged blobs are not repaired: restore the blobs from a backup or delete the objects")
	}
	if !rep.Clean() {
		return 1
	}
	return 0
}
