#!/usr/bin/env bash
# Make sure kafka/libs holds the broker jars that kafka/pom.xml pins (Maven Central, via mvn).
# Usage: kafka/fetch.sh   (prints nothing when kafka/libs is already complete)
#
# kafka/libs/.complete records the sha256 of pom.xml once every jar is there; a missing or
# different marker (first use, interrupted fetch, changed pom) wipes kafka/libs and fetches again.
# Concurrent callers are serialised with a lock on pom.xml.
set -euo pipefail

KAFKA=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM=$KAFKA/pom.xml
LIBS=$KAFKA/libs
MARKER=$LIBS/.complete

want=$(sha256sum "$POM" | cut -d' ' -f1)
[[ -f $MARKER && $(<"$MARKER") == "$want" ]] && exit 0

exec 9<"$POM"
flock 9
[[ -f $MARKER && $(<"$MARKER") == "$want" ]] && exit 0  # another caller just did it

command -v mvn >/dev/null || { echo "kafka/fetch.sh: mvn not found (run scripts/deps.sh)" >&2; exit 1; }
echo "kafka/fetch.sh: fetching the Kafka broker jars into kafka/libs" >&2
rm -rf "$LIBS"
# Maven 3.8 prints colour resets even with -q -B: keep its output for a failure only.
if ! out=$(mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies 2>&1 </dev/null); then
  printf '%s\n' "$out" >&2
  echo "kafka/fetch.sh: mvn dependency:copy-dependencies failed" >&2
  exit 1
fi
ls "$LIBS"/kafka_2.13-*.jar "$LIBS"/slf4j-simple-*.jar >/dev/null 2>&1 ||
  { echo "kafka/fetch.sh: kafka/libs is incomplete after mvn" >&2; exit 1; }
echo "$want" >"$MARKER"
