#!/usr/bin/env bash
# The system programs the tests need, each installed only where it is missing.
#   chromium   level 3's report pages, checked in a headless browser (any Chromium or Chrome:
#              chromium, chromium-browser, google-chrome; or LADDER_BROWSER=/path)
#   promtool   Prometheus' linter and rule checker, run on both services' /metrics and the
#              rules (Debian package prometheus, which also has the prometheus server that
#              level 3's test_prometheus.py runs)
#   java       Apache Spark, for duration-score --engine spark (openjdk-17-jre-headless)
#   postgresql level 3's prediction log and level 2's MLflow backend store on a real PostgreSQL
#              (the tests start their own throwaway server with initdb/postgres)
# Debian/Ubuntu (apt) only; elsewhere it says what to install. `.ci/run` calls it.
set -euo pipefail

missing=()
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
    && ! command -v google-chrome >/dev/null 2>&1 && [ -z "${LADDER_BROWSER:-}" ]; then
    missing+=(chromium)
fi
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi
if ! command -v java >/dev/null 2>&1 && [ -z "${JAVA_HOME:-}" ]; then
    missing+=(openjdk-17-jre-headless)
fi
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: install ${missing[*]} with your package manager (no apt-get here)" >&2
    exit 1
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
echo "system-deps: apt-get install ${missing[*]}"
$sudo_cmd apt-get update -qq
# Slim Debian images lack the man folder the JRE's postinst links into.
$sudo_cmd mkdir -p /usr/share/man/man1
# Installing the prometheus package in a container starts no server (no systemd there).
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
