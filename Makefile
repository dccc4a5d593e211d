# `make run` runs Stoke with the examples; `make test` runs every test.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench vet
build:
	$(GO) build -o bin/stoke ./cmd/stoke

run: build
	./bin/stoke serve -f examples/stoke.yaml

vet:
	test -z "$$(gofmt -l cmd internal examples bench)" || (gofmt -l cmd internal examples bench; exit 1)
	$(GO) vet ./...

test: vet
	$(GO) test -race -timeout 20m ./...

bench: build
	$(GO) run ./bench/cmd/stokebench -all
