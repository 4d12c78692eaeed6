#!/usr/bin/env bash
# Makes sure PostgreSQL answers at 127.0.0.1:5432: starts the local cluster when it is
# installed but stopped, installs it with apt-get when absent and running as root, and
# otherwise says what to run.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
command -v pg_isready >/dev/null 2>&1 && ready && exit 0

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing PostgreSQL with apt-get..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "PostgreSQL is not installed. Run: sudo apt-get install postgresql" >&2
    echo "or point CASEBOOK_TEST_DATABASE_URL / CASEBOOK_DATABASE_URL at a server you may create databases on." >&2
    exit 1
  fi
fi

ver=$(ls /etc/postgresql | sort -V | tail -n1)
if [ "$(id -u)" = 0 ]; then
  # Tests connect over TCP as user postgres without a password, as on the CI machine.
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
else
  echo "PostgreSQL is stopped. Run: sudo pg_ctlcluster $ver main start" >&2
  exit 1
fi
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "PostgreSQL did not come up at 127.0.0.1:5432" >&2
exit 1
