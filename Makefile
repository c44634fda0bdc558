# The two commands a newcomer needs are `make run` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/soarkafka/soarkafka/app.version=$(VERSION)

.PHONY: run test build vet readme

# Run the server on its embedded defaults: SQLite under ./data and the
# in-process development broker on 127.0.0.1:9092.
run:
	$(GO) run ./cmd/soarkafka serve --dev-broker

# Install what the tests need (scripts/test-deps.sh), then run every test.
test:
	./scripts/test-deps.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	# The sandbox's memory-limit tests cannot run under ThreadSanitizer (its
	# shadow memory counts against the workers' RLIMIT_DATA): run them plain.
	$(GO) test -count=1 ./parsers/sandbox/
	# Every fuzz target for a short time (FUZZTIME, default 3s each).
	GO=$(GO) ./scripts/fuzz.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/soarkafka ./cmd/soarkafka

# Regenerate the docs' generated tables (asset fields, configuration keys; in
# docs/api.md, as app.RenderDocs says) from the field registry and the config keys.
readme:
	$(GO) run ./internal/readmegen .
