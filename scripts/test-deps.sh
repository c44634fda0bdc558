#!/usr/bin/env bash
# Installs and starts what the test suite needs and the machine lacks, from
# Debian's packages: a PostgreSQL server on 127.0.0.1:5432 with trust auth and
# a database "test"; kcat; MIT Kerberos' KDC programs (krb5kdc, kdb5_util,
# kadmin.local, kinit), which the tests run as throwaway realms of their own.
# Debian's python3 with python3-requests, which the platform apps' tests run
# (the SOAR platforms ship Python with requests and nothing else we use).
# Debian's chromium, which the web console's browser tests drive headless
# (internal/testenv.Chromium). Idempotent: where PostgreSQL already listens, it
# only checks. Later capabilities add their own needs here, so that
# `make test` is the one command a newcomer and CI run.
set -euo pipefail

log() { printf 'test-deps: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

ensure_postgres() {
  if [ -n "${SOARKAFKA_TEST_POSTGRES_URL:-}" ]; then
    log "using SOARKAFKA_TEST_POSTGRES_URL"; return 0
  fi
  if ! command -v pg_isready >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if command -v pg_isready >/dev/null && pg_up; then return 0; fi
    log "installing PostgreSQL"
    apt_install postgresql
  fi
  if ! pg_up; then
    local ver; ver=$(ls /etc/postgresql | sort -V | tail -n1)
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    # Tests connect as postgres over TCP without a password.
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    log "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up || { log "PostgreSQL does not answer on 127.0.0.1:5432"; return 1; }
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test'
  fi
}

# kcat: an independent Kafka client the dev broker's tests produce with.
ensure_kcat() {
  command -v kcat >/dev/null || { log "installing kcat"; apt_install kcat; }
}

# MIT Kerberos: internal/testenv.NewKDC runs krb5kdc, kdb5_util and
# kadmin.local on a realm in a temporary directory and kinit for ccache tests;
# it never reads /etc/krb5.conf nor uses a system KDC. So the packages must
# start no KDC of their own: a policy-rc.d (the Debian way to tell maintainer
# scripts not to start services) denies every start while they install, unless
# the machine already has one. The packages' debconf questions (default realm,
# KDC hosts) get their defaults; the /etc/krb5.conf that results is unused.
ensure_krb5() {
  if command -v krb5kdc >/dev/null && command -v kdb5_util >/dev/null &&
    command -v kadmin.local >/dev/null && command -v kinit >/dev/null; then
    return 0
  fi
  log "installing the MIT Kerberos KDC (krb5-kdc, krb5-admin-server, krb5-user)"
  local policy=/usr/sbin/policy-rc.d ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# test-deps.sh: start no service while installing\nexit 101\n' |
      as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    ours=1
  fi
  local rc=0
  apt_install krb5-kdc krb5-admin-server krb5-user || rc=$?
  if [ -n "$ours" ]; then as_root rm -f "$policy"; fi
  return "$rc"
}

# Debian's python3 and requests for the Splunk SOAR app's and the XSOAR
# integration's tests (internal/testenv.Python runs /usr/bin/python3).
ensure_python() {
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import requests' 2>/dev/null; then
    return 0
  fi
  log "installing python3 and python3-requests"
  apt_install python3 python3-requests
}

# chromium: the console's browser tests (console/*_test.go) run it headless
# through chromedp.
ensure_chromium() {
  command -v chromium >/dev/null || { log "installing chromium"; apt_install chromium; }
}

# helm: the deploy package's tests lint and render the Helm chart
# (internal/testenv.Helm finds it on PATH or in Go's bin directory). Built
# from source with the Go toolchain, a few minutes the first time.
ensure_helm() {
  local bin; bin=$(go env GOBIN); bin=${bin:-$(go env GOPATH)/bin}
  if command -v helm >/dev/null || [ -x "$bin/helm" ]; then return 0; fi
  log "installing helm (go install helm.sh/helm/v4/cmd/helm@v4.3.2)"
  go install helm.sh/helm/v4/cmd/helm@v4.3.2
}

ensure_postgres
ensure_kcat
ensure_krb5
ensure_python
ensure_chromium
ensure_helm
