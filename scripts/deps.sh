#!/usr/bin/env bash
# Install what the suite needs on Debian bookworm; fast no-op when everything is there.
# Usage: scripts/deps.sh   (as root; prints nothing when nothing had to be done)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(
  build-essential pkg-config xxd
  libcivetweb-dev libpq-dev librdkafka-dev libjansson-dev libcurl4-openssl-dev libssl-dev
  libcmocka-dev
  clang libclang-rt-14-dev   # make fuzz: libFuzzer of bookworm's clang (14)
  postgresql-15 postgresql-contrib nginx-light kcat
  python3-pytest python3-requests python3-psycopg2
  python3-dateutil python3-icalendar python3-recurring-ical-events   # recurrence tests (issue 13)
  curl gettext-base openssl procps
  wrk   # make bench (pgbench comes with postgresql-client-15, a dependency of postgresql-15)
  clang-format shellcheck python3-venv   # make lint (ruff goes into a venv under .tools/)
  chromium chromium-driver python3-selenium   # the browser tests (tests/integration/browser.py)
)
# Node 20 (needed by oauth2-mock-server 8), Java and Maven may come from elsewhere.
command -v node >/dev/null || PACKAGES+=(nodejs npm)
command -v java >/dev/null || PACKAGES+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || PACKAGES+=(maven)

missing=()
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for pkg in "${PACKAGES[@]}"; do
  grep -qx "$pkg install ok installed" <<<"$installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || { echo "deps.sh: run as root to install: ${missing[*]}" >&2; exit 1; }
  echo "deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# npm packages from their lock files: the local OpenID Connect provider (tests/oidc) and axe-core,
# which the browser tests inject into the pages (tests/web).
for dir in tests/oidc tests/web; do
  if [[ ! -f $ROOT/$dir/node_modules/.package-lock.json ||
    $ROOT/$dir/package-lock.json -nt $ROOT/$dir/node_modules/.package-lock.json ]]; then
    echo "deps.sh: npm ci in $dir" >&2
    (cd "$ROOT/$dir" && npm ci --no-audit --no-fund >&2)
  fi
done

# The Kafka broker's jars (Maven Central, pinned in kafka/pom.xml) into kafka/libs.
"$ROOT/kafka/fetch.sh"

# Mailpit, the mail server of make run and the integration tests (go install, pinned there) into
# .tools/bin.
"$ROOT/scripts/mailpit.sh" install
