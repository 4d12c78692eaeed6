.PHONY: build test demo bench fmt

build:
	go build -o bin/casebook ./cmd/casebook

test:
	scripts/test.sh

bench:
	scripts/ensure-postgres.sh
	go test -run '^$$' -bench . -benchtime 2s ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
