package boltmeta

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// committer runs write transactions with group commit: the functions that
// arrive while a commit (and its fsync) is in progress run together in the
// next transaction, so one fsync covers many concurrent writers.
//
// bbolt's DB.Batch does the same but starts each batch on a timer
// (MaxBatchDelay, 10 ms by default), which a lone writer pays on every PUT.
// Here the first writer starts at once and batches form only under load.
//
// The rules of DB.Batch hold: a function may run more than once (when
// another function of its group fails, the group's transaction is rolled
// back and re-run without it), so functions must reset their results at the
// start and have no side effects outside the transaction. A function that
// fails is re-run alone, so the error its caller sees is its own, unchanged.
type committer struct {
	db *bolt.DB

	mu      sync.Mutex
	queue   []call
	running bool

	// commits counts group transactions, for benchmarks.
	commits atomic.Int64
}

// maxGroup bounds one transaction, so a burst cannot build a huge one.
const maxGroup = 256

type call struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// errSolo tells a caller to re-run its function in a transaction of its own.
var errSolo = errors.New("boltmeta: re-run alone")

func (c *committer) update(fn func(*bolt.Tx) error) error {
	done := make(chan error, 1)
	c.mu.Lock()
	c.queue = append(c.queue, call{fn: fn, done: done})
	if !c.running {
		c.running = true
		go c.loop()
	}
	c.mu.Unlock()
	err := <-done
	if err == errSolo {
		err = c.db.Update(fn)
	}
	return mapFull(err)
}

func (c *committer) loop() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxGroup)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		group := slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
		c.mu.Unlock()
		c.run(group)
	}
}

func (c *committer) run(group []call) {
	for len(group) > 0 {
		failed, panicked := -1, false
		c.commits.Add(1)
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, cl := range group {
				var err error
				if panicked, err = safeCall(cl.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 && (len(group) > 1 || panicked) {
			group[failed].done <- errSolo
			group = slices.Delete(group, failed, failed+1)
			continue
		}
		// Success, a commit error, or the failure of a function that ran
		// alone: in each case every caller's result is final.
		for _, cl := range group {
			cl.done <- err
		}
		return
	}
}

// safeCall keeps a panicking function from taking the committer goroutine
// (and the process) down: it reports the panic, and the caller re-runs the
// function alone, in its own goroutine, where the panic reaches the
// caller's recovery (the HTTP layer's) as if there were no group commit.
func safeCall(fn func(*bolt.Tx) error, tx *bolt.Tx) (panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked, err = true, fmt.Errorf("boltmeta: panic in transaction: %v", p)
		}
	}()
	return false, fn(tx)
}
