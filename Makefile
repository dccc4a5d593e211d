# `make run` runs Stoke with the examples; `make test` runs every test.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test bench vet python-deps
build:
	$(GO) build -o bin/stoke ./cmd/stoke

run: build python-deps
	./bin/stoke serve -f examples/stoke.yaml

# examples/django-drf (and the python-wsgi tests) run on Debian's Django and
# Django REST framework, under /usr/bin/python3.
PYTHON_DEBS = python3-django python3-djangorestframework
python-deps:
	@/usr/bin/python3 -c 'import django, rest_framework' 2>/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y $(PYTHON_DEBS) || { apt-get update && apt-get install -y $(PYTHON_DEBS); }; \
	  else echo "examples/django-drf needs: sudo apt-get install -y $(PYTHON_DEBS)"; exit 1; fi; }

vet:
	test -z "$$(gofmt -l cmd internal examples bench)" || (gofmt -l cmd internal examples bench; exit 1)
	$(GO) vet ./...

test: vet python-deps
	$(GO) test -race -timeout 20m ./...

bench: build
	$(GO) run ./bench/cmd/stokebench -all
