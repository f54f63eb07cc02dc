// Command load is the load generator of `make bench`: plain net/http with
// our own SigV4 signing (header-signed, UNSIGNED-PAYLOAD bodies) or our
// presign package, so that the client costs little CPU on the machine it
// shares with the server it measures.
//
//	load e2e    start nfyio, versitygw and memserver, run every load, write JSON
//	load run    run one load against a server already running (profiling)
//	load disk   raw disk figures: sequential write + fsync, 4 KiB + fdatasync
//	load report render the Go benchmarks, the e2e and disk JSON as markdown
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load e2e|run|disk|report [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "e2e":
		err = runE2E(os.Args[2:])
	case "run":
		err = runOne(os.Args[2:])
	case "disk":
		err = runDisk(os.Args[2:])
	case "report":
		err = runReport(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "load %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// runOne applies one load to a running server, populating its key space
// first, and prints the result as JSON.
func runOne(args []string) error {
	fs := flag.NewFlagSet("load run", flag.ContinueOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:9000", "server URL")
	access := fs.String("access", os.Getenv("NFYIO_ROOT_ACCESS_KEY"), "access key")
	secret := fs.String("secret", os.Getenv("NFYIO_ROOT_SECRET_KEY"), "secret key")
	pid := fs.Int("pid", 0, "server PID, for its RSS and CPU time")
	op := fs.String("op", "get", "put, get, mixed, presign or list")
	size := fs.Int64("size", smallSize, "object size")
	conc := fs.Int("c", 32, "concurrent clients")
	keys := fs.Int("keys", smallKeys, "key space (list: keys in the bucket)")
	bucket := fs.String("bucket", smallBucket, "bucket")
	prefix := fs.String("prefix", smallPrefix, "key prefix")
	dur := fs.Duration("duration", 5*time.Second, "measured time")
	warm := fs.Duration("warmup", time.Second, "warm-up")
	populate := fs.Bool("populate", true, "create the bucket and PUT the key space first")
	congestion := fs.String("congestion", defaultCongestion, "TCP congestion control of the connections (empty: the host's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *size > int64(len(payload)) {
		return fmt.Errorf("size at most %d", len(payload))
	}
	ctx := context.Background()
	t := newTarget("server", *endpoint, *pid, *access, *secret, *congestion)
	if *populate {
		if err := t.createBucket(ctx, *bucket); err != nil {
			return err
		}
		psize := *size
		if *op == "list" {
			psize = 0
		}
		if _, err := t.populate(ctx, *bucket, *prefix, *keys, psize, 32, time.Now().Add(10*time.Minute)); err != nil {
			return err
		}
	}
	spec := loadSpec{Name: *op, Op: *op, Size: *size, Conc: *conc, Bucket: *bucket, Prefix: *prefix, Keys: *keys, ReadPct: 70}
	r := runRounds(ctx, []*target{t}, spec, 1, *warm, *dur)[0]
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(b))
	return nil
}
