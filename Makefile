.PHONY: build test demo bench fmt

build:
	go build -o bin/casebook ./cmd/casebook

test:
	.ci/test.sh

# The README's first command: PostgreSQL set up (or the way to do it said), then the
# demo until Ctrl-C. ARGS passes flags on, e.g. make demo ARGS='--mbox my.mbox'.
demo: build
	.ci/ensure-postgres.sh
	bin/casebook demo $(ARGS)

bench:
	.ci/ensure-postgres.sh
	go test -run '^$$' -bench . -benchtime 2s ./...

fmt:
	gofmt -w $$(git ls-files '*.go')
