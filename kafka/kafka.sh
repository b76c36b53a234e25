#!/usr/bin/env bash
# A private single-node Apache Kafka broker (KRaft, broker + controller in one JVM) in its own
# directory, on its own port, with the suite's topics.
#
# Usage:
#   kafka/kafka.sh start DIR PORT   render DIR/server.properties, format DIR/data on first use, start
#                                   the broker, create the topics (idempotent), wait until they are
#                                   usable; prints one line: 127.0.0.1:PORT
#   kafka/kafka.sh stop DIR         SIGTERM, up to 20 s for a clean shutdown, then SIGKILL;
#                                   no-op when not running
#   kafka/kafka.sh kill DIR         SIGKILL at once (simulated crash); `start` recovers
#   kafka/kafka.sh status DIR       exit 0 when the broker of DIR is running
#
# DIR is an absolute path; it holds server.properties, cluster-id (kept across restarts), data/,
# kafka.pid (the JVM's own pid) and kafka.log. The controller listens on a free port picked at each
# start. Topics: $ROOM_EVENTS_TOPIC, $USER_EVENTS_TOPIC, $RESERVATION_EVENTS_TOPIC (defaults
# room_events, user_events, reservation_events; KAFKA_PARTITIONS partitions each, 1-64, default 6:
# consumers of one group share a topic's partitions, so a service scales to that many consuming
# replicas) and each one's `.dlq` (1 partition). A topic that exists keeps its partition count.
# KAFKA_LOG_LEVEL (default warn) sets the broker's log level. The jars come from
# kafka/fetch.sh (Maven Central, only when kafka/libs is incomplete).
#
# Optional second listener with SASL/PLAIN authentication (for the tests of the services' SASL
# settings): KAFKA_SASL_LISTENER_PORT, KAFKA_SASL_LISTENER_USER and KAFKA_SASL_LISTENER_PASSWORD
# (all three, at every start) add SASL_PLAINTEXT://127.0.0.1:PORT that accepts that one user.
set -euo pipefail

KAFKA=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$KAFKA")
START_TIMEOUT=60
STOP_TIMEOUT=20
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

die() { echo "kafka.sh: $*" >&2; exit 1; }
usage() { die "usage: kafka.sh start DIR PORT | stop DIR | kill DIR | status DIR"; }

# Options for every JVM launched here: small, quick to start, no GUI, IPv4 only.
JVM_COMMON=(
  -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1
  -XX:MaxMetaspaceSize=192m -XX:ReservedCodeCacheSize=64m -XX:+ExitOnOutOfMemoryError '-Xlog:cds*=off'
  -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true
  -Dorg.slf4j.simpleLogger.showDateTime=true
  "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS"
  "-Dorg.slf4j.simpleLogger.defaultLogLevel=${KAFKA_LOG_LEVEL:-warn}"
  -Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info
  -cp "$KAFKA/libs/*"
)

# Class data sharing (AppCDS) halves the broker's start-up (~3 s -> ~1.3 s) and its RSS. The
# archive belongs to this JVM build and the jars in kafka/libs (fetch.sh wipes it with them): the
# first broker run without one dumps it at its clean exit (+~3 s on that `stop`), and `stop` moves it
# into kafka/libs. A stale archive is ignored by the JVM (-Xshare:auto), never an error.
cds_archive() {
  local java jvm
  java=$(readlink -f "$(command -v java)")
  jvm=$(dirname "$java")/../lib/server/libjvm.so
  [[ -f $jvm ]] || jvm=$java
  echo "$KAFKA/libs/cds-$(stat -L -c '%n %s %Y' "$jvm" | sha256sum | cut -c1-12).jsa"
}

# After a clean exit: publish the archive the JVM dumped, unless another broker already did.
publish_cds() {
  local target
  [[ -f $DIR/cds-pending ]] || return 0
  target=$(<"$DIR/cds-pending")
  if [[ -s $DIR/cds.jsa.tmp && ! -s $target && -d $(dirname "$target") ]]; then
    if cp "$DIR/cds.jsa.tmp" "$target.$$" && mv -f "$target.$$" "$target"; then
      find "$(dirname "$target")" -maxdepth 1 -name 'cds-*.jsa' ! -name "$(basename "$target")" \
        -delete # archives of a former JVM build
    else
      rm -f "$target.$$"
    fi
  fi
  rm -f "$DIR/cds.jsa.tmp" "$DIR/cds-pending"
}

# The pid of DIR's broker JVM when it is alive (not a zombie, and really that JVM), else nothing.
broker_pid() {
  local pid
  [[ -f $DIR/kafka.pid ]] || return 1
  pid=$(<"$DIR/kafka.pid")
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $DIR/server.properties" ||
    return 1
  echo "$pid"
}

topic_specs() {
  local t
  for t in "${ROOM_EVENTS_TOPIC:-room_events}" "${USER_EVENTS_TOPIC:-user_events}" \
    "${RESERVATION_EVENTS_TOPIC:-reservation_events}"; do
    echo "$t:$PARTITIONS" "$t.dlq:1"
  done
}

# The optional SASL_PLAINTEXT listener's settings (later keys override the template's).
sasl_listener() {
  local port=${KAFKA_SASL_LISTENER_PORT:-} user=${KAFKA_SASL_LISTENER_USER:-}
  local password=${KAFKA_SASL_LISTENER_PASSWORD:-}
  [[ -n $port ]] || return 0
  [[ $port =~ ^[0-9]+$ && $user =~ ^[A-Za-z0-9_.-]+$ && $password =~ ^[A-Za-z0-9_.-]+$ ]] ||
    die "KAFKA_SASL_LISTENER_PORT needs KAFKA_SASL_LISTENER_USER and _PASSWORD ([A-Za-z0-9_.-])"
  cat <<EOF

# --- SASL/PLAIN listener (KAFKA_SASL_LISTENER_*) ----------------------------------------------
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$port
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$user="$password";
EOF
}

start() {
  port_valid "$PORT" || die "bad port: $PORT"
  PARTITIONS=${KAFKA_PARTITIONS:-6}
  if ! [[ $PARTITIONS =~ ^[1-9][0-9]?$ ]] || ((PARTITIONS > 64)); then
    die "KAFKA_PARTITIONS must be 1-64, not '$PARTITIONS'"
  fi
  command -v java >/dev/null || die "java not found (run scripts/deps.sh)"
  "$KAFKA/fetch.sh"
  mkdir -p "$DIR"
  exec 8>"$DIR/.lock"
  flock 8 # one start at a time per DIR

  local pid started=0
  if pid=$(broker_pid); then
    grep -qx "listeners=PLAINTEXT://127.0.0.1:$PORT,.*" "$DIR/server.properties" ||
      die "the broker of $DIR is already running on another port"
  else
    CONTROLLER_PORT=$("$ROOT/scripts/freeport.sh")
    export PORT CONTROLLER_PORT DIR
    # shellcheck disable=SC2016 # envsubst's list of variables, literally
    envsubst '${PORT} ${CONTROLLER_PORT} ${DIR}' <"$KAFKA/server.properties.template" \
      >"$DIR/server.properties.tmp"
    sasl_listener >>"$DIR/server.properties.tmp"
    chmod 600 "$DIR/server.properties.tmp" # may hold the SASL listener's password
    mv "$DIR/server.properties.tmp" "$DIR/server.properties"

    if [[ ! -s $DIR/cluster-id ]]; then
      # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
      /usr/bin/python3 -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"):
        print(s); break' >"$DIR/cluster-id.tmp"
      mv "$DIR/cluster-id.tmp" "$DIR/cluster-id"
    fi
    local cds archive
    archive=$(cds_archive)
    rm -f "$DIR/cds.jsa.tmp" "$DIR/cds-pending"
    if [[ -s $archive ]]; then
      cds=("-XX:SharedArchiveFile=$archive")
    else
      cds=("-XX:ArchiveClassesAtExit=$DIR/cds.jsa.tmp")
      echo "$archive" >"$DIR/cds-pending"
    fi

    if [[ ! -f $DIR/data/meta.properties ]]; then
      java -Xmx256m "${JVM_COMMON[@]}" "${cds[0]/#-XX:ArchiveClassesAtExit=*/-Xshare:auto}" \
        kafka.tools.StorageTool format \
        -t "$(<"$DIR/cluster-id")" -c "$DIR/server.properties" --ignore-formatted \
        >>"$DIR/kafka.log" 2>&1 </dev/null ||
        { tail -n 20 "$DIR/kafka.log" >&2; die "formatting $DIR/data failed (log: $DIR/kafka.log)"; }
    fi

    # setsid: its own session, so a Ctrl-C meant for the caller does not reach it (the caller
    # stops it in order). setsid execs java in the same process: $! is the JVM's pid.
    cd "$DIR"
    echo "--- $(date -Is) starting on 127.0.0.1:$PORT (controller $CONTROLLER_PORT)" >>kafka.log
    setsid java -Xmx512m -Xms256m "${JVM_COMMON[@]}" "${cds[@]}" kafka.Kafka "$DIR/server.properties" \
      >>kafka.log 2>&1 </dev/null 8>&- &
    pid=$!
    started=1
    echo "$pid" >kafka.pid
  fi

  # shellcheck disable=SC2046
  if ! /usr/bin/python3 "$KAFKA/topics.py" "127.0.0.1:$PORT" "$START_TIMEOUT" --pid "$pid" \
    $(topic_specs); then
    tail -n 30 "$DIR/kafka.log" >&2
    if ((started)); then # never leave a half-started broker behind
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
      rm -f "$DIR/kafka.pid" "$DIR/cds.jsa.tmp" "$DIR/cds-pending"
    fi
    die "the broker in $DIR did not become ready (log: $DIR/kafka.log)"
  fi
  echo "127.0.0.1:$PORT"
}

stop() {
  local pid
  if pid=$(broker_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$STOP_TIMEOUT"; then
      echo "kafka.sh: broker of $DIR did not stop within ${STOP_TIMEOUT}s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 10 || die "broker pid $pid of $DIR survives SIGKILL"
      rm -f "$DIR/cds.jsa.tmp" # possibly half-written
    fi
  fi
  publish_cds
  rm -f "$DIR/kafka.pid"
}

kill_now() {
  local pid
  if pid=$(broker_pid); then
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "broker pid $pid of $DIR survives SIGKILL"
  fi
  rm -f "$DIR/kafka.pid"
}

cmd=${1:-}
DIR=${2:-}
[[ -n $DIR ]] || usage
[[ $DIR == /* ]] || die "DIR must be an absolute path: $DIR"
DIR=${DIR%/}
case $cmd in
  start) [[ $# -eq 3 ]] || usage; PORT=$3; start ;;
  stop) [[ $# -eq 2 ]] || usage; stop ;;
  kill) [[ $# -eq 2 ]] || usage; kill_now ;;
  status) [[ $# -eq 2 ]] || usage; broker_pid >/dev/null ;;
  *) usage ;;
esac
