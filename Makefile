# nfyio storage — everyday commands. `make test` is what CI runs.
GO ?= go
BIN := bin/nfyio

.PHONY: build run test test-go test-scaleout test-e2e fuzz lint bench deps clean

build:
	$(GO) build -o $(BIN) ./cmd/nfyio

run: build
	$(BIN) server

# All tests: lint, unit and integration tests (with the race detector) on the
# embedded backends, the S3 suite again on PostgreSQL + SeaweedFS, the
# end-to-end suites with other languages' clients and a browser, and a short
# fuzzing pass. scripts/install-deps.sh installs what they need.
test:
	scripts/test.sh

test-go:
	$(GO) test -race -count=1 ./...

test-scaleout:
	NFYIO_TEST_BACKEND=postgres+seaweedfs $(GO) test -count=1 ./internal/s3test/

test-e2e:
	scripts/e2e.sh

fuzz:
	scripts/fuzz.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	staticcheck ./...

deps:
	scripts/install-deps.sh

bench:
	scripts/bench.sh

clean:
	rm -rf bin
