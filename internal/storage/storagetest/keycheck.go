package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"nfyio.dev/storage/internal/storage"
)

func keyIDs(ks []storage.AccessKey) []string {
	ids := make([]string, len(ks))
	for i, k := range ks {
		ids[i] = k.ID
	}
	return ids
}

// testKeysCheck: a KeysCheck sees every stored key as it is before the
// change, its error aborts the change and comes back unchanged, and a
// missing id is ErrKeyNotFound without running the check.
func testKeysCheck(t *testing.T, m storage.Meta) {
	ctx := t.Context()
	keys := []storage.AccessKey{
		{ID: "AKIACHECKA", Name: "a", SealedSecret: []byte("sa"), Scopes: []string{"admin"}, Created: at(1)},
		{ID: "AKIACHECKB", Name: "b", SealedSecret: []byte("sb"), Scopes: []string{"object:get"}, Buckets: []string{"media"}, Created: at(2), Expires: at(7200)},
		{ID: "AKIACHECKC", Name: "c", SealedSecret: []byte("sc"), Scopes: []string{"admin"}, Disabled: true, Created: at(3)},
	}
	for _, k := range keys {
		if err := m.PutAccessKey(ctx, k); err != nil {
			t.Fatalf("PutAccessKey(%s): %v", k.ID, err)
		}
	}
	checkSeen := func(what string, seen, want []storage.AccessKey) {
		t.Helper()
		if !slices.Equal(keyIDs(seen), keyIDs(want)) {
			t.Fatalf("%s: check saw keys %v, want %v", what, keyIDs(seen), keyIDs(want))
		}
		for i := range want {
			checkAccessKey(t, what+": key seen by the check", seen[i], want[i])
		}
	}

	// A refusing check aborts the update before its change runs.
	refused := errors.New("refused by the check")
	changed := false
	err := m.UpdateAccessKey(ctx, keys[1].ID,
		func([]storage.AccessKey) error { return refused },
		func(k *storage.AccessKey) error { changed = true; k.Name = "changed"; return nil })
	if err != refused {
		t.Fatalf("UpdateAccessKey with a refusing check returned %v, want the check's error unchanged", err)
	}
	if changed {
		t.Error("UpdateAccessKey ran the change although the check refused")
	}
	got, err := m.GetAccessKey(ctx, keys[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	checkAccessKey(t, "after a refused update", got, keys[1])

	// A passing check sees every key as stored before the change, and the
	// change is then applied.
	var seen []storage.AccessKey
	err = m.UpdateAccessKey(ctx, keys[1].ID,
		func(ks []storage.AccessKey) error { seen = slices.Clone(ks); return nil },
		func(k *storage.AccessKey) error { k.Name = "renamed"; k.Disabled = true; return nil })
	if err != nil {
		t.Fatalf("UpdateAccessKey with a passing check: %v", err)
	}
	checkSeen("UpdateAccessKey", seen, keys)
	keys[1].Name, keys[1].Disabled = "renamed", true
	got, _ = m.GetAccessKey(ctx, keys[1].ID)
	checkAccessKey(t, "after a checked update", got, keys[1])

	// A change that fails after a passing check still aborts the update.
	changeErr := errors.New("refused by the change")
	if err := m.UpdateAccessKey(ctx, keys[1].ID, func([]storage.AccessKey) error { return nil },
		func(k *storage.AccessKey) error { k.Name = "nope"; return changeErr }); err != changeErr {
		t.Fatalf("UpdateAccessKey with a failing change returned %v, want it unchanged", err)
	}

	// A missing id is ErrKeyNotFound and the check does not run.
	ran := false
	probe := func([]storage.AccessKey) error { ran = true; return refused }
	if err := m.UpdateAccessKey(ctx, "AKIANOPE", probe, func(*storage.AccessKey) error { return nil }); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("UpdateAccessKey(missing) with a check: %v, want ErrKeyNotFound", err)
	}
	if err := m.DeleteAccessKey(ctx, "AKIANOPE", probe); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("DeleteAccessKey(missing) with a check: %v, want ErrKeyNotFound", err)
	}
	if ran {
		t.Error("the check ran for a missing id")
	}

	// A refusing check aborts the delete.
	if err := m.DeleteAccessKey(ctx, keys[0].ID, func([]storage.AccessKey) error { return refused }); err != refused {
		t.Fatalf("DeleteAccessKey with a refusing check returned %v, want the check's error unchanged", err)
	}
	got, err = m.GetAccessKey(ctx, keys[0].ID)
	if err != nil {
		t.Fatalf("GetAccessKey after a refused delete: %v", err)
	}
	checkAccessKey(t, "after a refused delete", got, keys[0])

	// A passing check sees every key, the one to delete included.
	seen = nil
	if err := m.DeleteAccessKey(ctx, keys[0].ID, func(ks []storage.AccessKey) error { seen = slices.Clone(ks); return nil }); err != nil {
		t.Fatalf("DeleteAccessKey with a passing check: %v", err)
	}
	checkSeen("DeleteAccessKey", seen, keys)
	if _, err := m.GetAccessKey(ctx, keys[0].ID); !errors.Is(err, storage.ErrKeyNotFound) {
		t.Errorf("GetAccessKey after a checked delete: %v, want ErrKeyNotFound", err)
	}

	// The next check sees the store without the deleted key.
	seen = nil
	if err := m.UpdateAccessKey(ctx, keys[2].ID, func(ks []storage.AccessKey) error { seen = slices.Clone(ks); return nil },
		func(k *storage.AccessKey) error { return nil }); err != nil {
		t.Fatal(err)
	}
	checkSeen("UpdateAccessKey after a delete", seen, keys[1:])
}

func testKeysCheckConcurrent(t *testing.T, m storage.Meta) {
	KeysCheckRace(t, m)
}

// errNoOtherEnabled is the error of the check KeysCheckRace gives every
// change.
var errNoOtherEnabled = errors.New("no other enabled key would remain")

// KeysCheckRace checks that guarded key changes are serialised: in each
// round it stores six enabled keys, then six goroutines, started together
// and spread over nodes (stores on the same data, as nodes of a scale-out
// deployment are), each disable or delete a different one of them under the
// check "fail unless another of the six stays enabled". Exactly five must
// succeed, one must fail with the check's error, and exactly one key must
// remain enabled. Without serialisation, checks that read the keys before a
// concurrent change commits all pass and no key remains.
func KeysCheckRace(t *testing.T, nodes ...storage.Meta) {
	t.Helper()
	ctx := t.Context()
	const n, rounds = 6, 5
	for round := range rounds {
		// Odd rounds mix deletes in, so a change sees keys vanish as well as
		// become disabled.
		mixed := round%2 == 1
		prefix := fmt.Sprintf("AKIARACE%d-", round)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s%d", prefix, i)
			k := storage.AccessKey{ID: ids[i], Name: "race", Scopes: []string{"admin"}, Created: at(i)}
			if err := nodes[0].PutAccessKey(ctx, k); err != nil {
				t.Fatalf("PutAccessKey(%s): %v", k.ID, err)
			}
		}
		guard := func(id string) storage.KeysCheck {
			return func(keys []storage.AccessKey) error {
				for _, k := range keys {
					if k.ID != id && strings.HasPrefix(k.ID, prefix) && !k.Disabled {
						return nil
					}
				}
				return errNoOtherEnabled
			}
		}
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, id := range ids {
			node := nodes[i%len(nodes)]
			wg.Go(func() {
				<-start
				if mixed && i%2 == 1 {
					errs[i] = node.DeleteAccessKey(ctx, id, guard(id))
					return
				}
				errs[i] = node.UpdateAccessKey(ctx, id, guard(id), func(k *storage.AccessKey) error {
					k.Disabled = true
					return nil
				})
			})
		}
		close(start)
		wg.Wait()

		ok, refused := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case err == errNoOtherEnabled:
				refused++
			default:
				t.Fatalf("round %d: change of %s: %v", round, ids[i], err)
			}
		}
		stored, err := nodes[len(nodes)-1].ListAccessKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var enabled []string
		for _, k := range stored {
			if strings.HasPrefix(k.ID, prefix) && !k.Disabled {
				enabled = append(enabled, k.ID)
			}
		}
		if ok != n-1 || refused != 1 || len(enabled) != 1 {
			t.Fatalf("round %d (deletes mixed in: %v): %d changes succeeded and %d were refused, want %d and 1; enabled keys left: %v, want exactly one",
				round, mixed, ok, refused, n-1, enabled)
		}
	}
}
