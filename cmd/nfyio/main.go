// Command nfyio is the nfyio storage server and its command-line tools.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `nfyio: an S3-compatible object store built around presigned URLs.

Usage:
  nfyio server [flags]             run the store (see nfyio server -h)
  nfyio presign s3://BUCKET/KEY    print a presigned URL (like aws s3 presign)
  nfyio presign-post s3://BUCKET/KEY  print a browser form upload (URL and fields) as JSON
  nfyio keys COMMAND               manage access keys of a running store
  nfyio fsck [--data DIR] [--repair]  check a stopped store's records against its blobs
  nfyio version                    print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "server":
		return runServer(rest, stdout, stderr)
	case "presign":
		return runPresign(rest, stdout, stderr)
	case "presign-post":
		return runPresignPost(rest, stdout, stderr)
	case "keys":
		return runKeys(rest, stdout, stderr)
	case "fsck":
		return runFsck(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "nfyio", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "nfyio: unknown command %q\n\n%s", cmd, usage)
	return 2
}
