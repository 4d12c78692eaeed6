#!/usr/bin/env bash
# The test command (make test, .ci/run): real PostgreSQL, Dovecot, Chromium, clamd and nft,
# then go vet, staticcheck and go test -race over everything.
set -euo pipefail
cd "$(dirname "$0")/.."

.ci/ensure-postgres.sh

missing=()
command -v /usr/sbin/dovecot >/dev/null 2>&1 || missing+=(dovecot-imapd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v /usr/sbin/clamd >/dev/null 2>&1 || missing+=(clamav-daemon)
# The lock test silences one connection with an nftables rule (as root).
command -v /usr/sbin/nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} with apt-get..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "the tests need: ${missing[*]}. Run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# The S3 tests run Versity's S3 gateway (casebook/blob/s3test); it installs from the
# Go module proxy into GOBIN (about a minute, once).
gobin="$(go env GOBIN)"; gobin="${gobin:-$(go env GOPATH)/bin}"
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$gobin/versitygw" ]; then
  echo "installing versitygw into $gobin..." >&2
  go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
# staticcheck from the Go module proxy, pinned: it finds unused code and wasted values vet does not.
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
go test -race -timeout 20m "$@" ./...
