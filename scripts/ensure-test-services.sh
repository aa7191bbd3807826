#!/usr/bin/env bash
# Makes sure the binaries the test suite needs are present: redis-server, PostgreSQL's
# initdb/pg_ctl/postgres and a chromium for the dashboard's browser tests (CHROMIUM may name one). Installs them with apt-get when running as root; otherwise says
# exactly what to install. Starting the servers is the test setup's job (packages/testkit).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

pg_bin=""
for d in ${PG_BIN:-} /usr/lib/postgresql/*/bin; do
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then pg_bin=$d; break; fi
done
if [ -z "$pg_bin" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then pg_bin=path; fi
[ -n "$pg_bin" ] || missing+=(postgresql)

if [ -z "${CHROMIUM:-}" ] || [ ! -x "$CHROMIUM" ]; then
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    command -v google-chrome >/dev/null 2>&1 || missing+=(chromium)
fi

if [ ${#missing[@]} -eq 0 ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-services: installing ${missing[*]} with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Debian's package starts a system redis on 6379; the tests use their own servers on free ports.
  if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
  exit 0
fi

echo "ensure-test-services: missing ${missing[*]}." >&2
echo "Install them, e.g.: sudo apt-get install -y ${missing[*]}  (or set PG_BIN to a PostgreSQL bin directory, CHROMIUM to a browser)" >&2
exit 1
