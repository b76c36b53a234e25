#!/usr/bin/env bash
# The local nginx gateway: gateway/nginx.conf.template around helm/meeting-rooms/files/gateway.conf.
#
# Usage:
#   scripts/nginx.sh start DIR GATEWAY_PORT USER_PORTS ROOM_PORTS RESERVATION_PORTS
#       each *_PORTS is one port or a comma-separated list of the replicas' ports (5000 or
#       5000,5010,5020), all on 127.0.0.1: the gateway balances across them (gateway.conf's
#       upstream groups: GET and HEAD may go on to another replica, other methods only when
#       nothing was sent).  Renders DIR/nginx.conf, copies the web app (web/) to DIR/web with its version in
#       index.html, checks the configuration (nginx -t), starts nginx (daemon; pid DIR/nginx.pid,
#       logs DIR/error.log and DIR/access.log), waits until /health answers (max 10 s),
#       prints one line: http://127.0.0.1:GATEWAY_PORT
#       The workers run as nobody and read DIR/web: DIR and the directories above it must be
#       searchable by others (a warning says so when they are not; the API works regardless).
#   scripts/nginx.sh reload DIR GATEWAY_PORT USER_PORTS ROOM_PORTS RESERVATION_PORTS
#       the running gateway on other port lists (a replica taken out before it stops, or put
#       back): renders as `start` does, from the same environment (give it the settings `start`
#       had), checks it (nginx -t; on failure the previous gateway.conf is put back and nginx
#       keeps running on it), reloads, and returns once the new workers serve and no old one
#       accepts connections any more (old ones finish the requests they hold)
#   scripts/nginx.sh web-version
#       prints the web app's version (below), the path segment of its assets: /assets/VERSION/
#   scripts/nginx.sh stop DIR
#       graceful stop (SIGQUIT; SIGTERM after 5 s, SIGKILL after 7 s); no-op when not running
# Optional environment of `start` (the chart's gateway.trustedProxies and gateway.authRateLimit):
#   GATEWAY_TRUSTED_PROXIES  space-separated addresses/CIDRs whose X-Forwarded-For is believed
#                            (default none: nothing sits in front of the local gateway)
#   GATEWAY_AUTH_PER_MINUTE  /auth/* requests a minute per client address (default 30)
#   GATEWAY_AUTH_BURST       requests beyond that answered at once (default 30)
#   GATEWAY_REFRESH_PER_MINUTE, GATEWAY_REFRESH_BURST  the same for POST /auth/refresh and
#                            /auth/logout, which have their own limit (default 600 and 600)
#   GATEWAY_CONN_PER_CLIENT  requests in progress at once per client address (default 256)
#   GATEWAY_UPSTREAM_KEEPALIVE  idle upstream connections per worker and upstream group (default 32)
# The services see the gateway as 127.0.0.1 and the client in X-Real-IP: start user-service with
# TRUSTED_GATEWAYS=127.0.0.1 (as scripts/run.sh and the tests do) so that its own /auth/* limit
# counts per client.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEMPLATE=$ROOT/gateway/nginx.conf.template
GATEWAY=$ROOT/helm/meeting-rooms/files/gateway.conf
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

die() { echo "nginx.sh: $*" >&2; exit 1; }
usage() {
  die "usage: nginx.sh start|reload DIR GATEWAY_PORT USER_PORTS ROOM_PORTS RESERVATION_PORTS" \
    "(each *_PORTS one port or a comma-separated list: 5000,5010) | stop DIR | web-version"
}

# Prints the master's pid when DIR/nginx.pid names a live nginx master.
master_pid() {
  local pid
  [[ -f $DIR/nginx.pid ]] || return 1
  pid=$(<"$DIR/nginx.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  [[ $(ps -o args= -p "$pid") == "nginx: master process"* ]] || return 1
  echo "$pid"
}

nginx_cmd() { nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/error.log" "$@"; }

# The web app's version: the first 12 hex digits of a sha256 over every file under web/, each as
# its path (relative to web/), a newline and its content, in the byte order of the paths - the
# Helm chart's mr.webVersion computes the same.  No symbolic links: Helm follows them and find
# -type f does not, so the two would disagree, and nginx would follow a link out of web/.
web_version() {
  local f links
  links=$(cd "$ROOT/web" && find . -type l -printf '%P ')
  [[ -z $links ]] || die "web/ holds symbolic links (not shipped): $links"
  (
    cd "$ROOT/web"
    find . -type f -printf '%P\n' | LC_ALL=C sort | while IFS= read -r f; do
      printf '%s\n' "$f"
      cat -- "$f"
    done
  ) | sha256sum | cut -c1-12
}

# DIR/web: a copy of web/ whose index.html names this version's assets (/assets/VERSION/...).
render_web() { # version
  rm -rf "$DIR/web"
  cp -R "$ROOT/web" "$DIR/web"
  sed -i "s/__WEB_VERSION__/$1/g" "$DIR/web/index.html"
  if ((EUID == 0)) && ! runuser -u nobody -- test -r "$DIR/web/index.html" 2>/dev/null; then
    echo "nginx.sh: warning: nginx's workers (nobody) cannot read $DIR/web: the web app answers" \
      "403 (make DIR and the directories above it searchable by others)" >&2
  fi
}

# upstream_servers retry|once PORTS: gateway.conf's server lines of one service's upstream group
# (see there), one per replica; the retry group names a single replica twice, so that a GET
# still gets its second try.  Dies on a list that is not ports separated by commas, or that
# names a port twice.
upstream_servers() {
  local group=$1 list=$2 port ports=() out=""
  local -A seen=()
  [[ $list =~ ^[0-9]+(,[0-9]+)*$ ]] || die "bad port list: '$list' (ports separated by commas)"
  IFS=, read -ra ports <<<"$list"
  for port in "${ports[@]}"; do
    port_valid "$port" || die "bad port: $port (in $list)"
    [[ -z ${seen[$port]:-} ]] || die "port $port named twice in $list"
    seen[$port]=1
    # Each line after the first indented like the upstream blocks' own lines.
    [[ -z $out ]] || out+=$'\n    '
    if [[ $group == retry ]]; then
      out+="server 127.0.0.1:$port max_fails=0;"
      ((${#ports[@]} > 1)) || out+=$'\n    '"server 127.0.0.1:$port max_fails=0;"
    else
      out+="server 127.0.0.1:$port fail_timeout=2s;"
    fi
  done
  printf '%s' "$out"
}

# render GATEWAY_PORT USER_PORTS ROOM_PORTS RESERVATION_PORTS: DIR/nginx.conf and
# DIR/gateway.conf (validated settings; the web app's copy by render_web).
render() {
  port_valid "$1" || die "bad port: $1"
  # One assignment each: set -e ends the script when one dies (not inside an && list).
  local user_retry user_once room_retry room_once res_retry res_once
  user_retry=$(upstream_servers retry "$2")
  user_once=$(upstream_servers once "$2")
  room_retry=$(upstream_servers retry "$3")
  room_once=$(upstream_servers once "$3")
  res_retry=$(upstream_servers retry "$4")
  res_once=$(upstream_servers once "$4")
  [[ $DIR == /* ]] || die "DIR must be an absolute path: $DIR"
  local proxy real_ip_from="" rate=${GATEWAY_AUTH_PER_MINUTE:-30} burst=${GATEWAY_AUTH_BURST:-30}
  local refresh_rate=${GATEWAY_REFRESH_PER_MINUTE:-600}
  local refresh_burst=${GATEWAY_REFRESH_BURST:-600}
  local conns=${GATEWAY_CONN_PER_CLIENT:-256} keepalive=${GATEWAY_UPSTREAM_KEEPALIVE:-32}
  for proxy in ${GATEWAY_TRUSTED_PROXIES:-}; do
    [[ $proxy =~ ^[0-9A-Fa-f.:]+(/[0-9]+)?$ ]] || die "bad trusted proxy address: $proxy"
    real_ip_from+="set_real_ip_from $proxy;"$'\n'
  done
  if ! [[ $rate =~ ^[0-9]+$ ]] || ((rate < 1)); then die "bad GATEWAY_AUTH_PER_MINUTE: $rate"; fi
  # nginx refuses burst=0 ("invalid burst value"): 1 or more.
  if ! [[ $burst =~ ^[0-9]+$ ]] || ((burst < 1)); then die "bad GATEWAY_AUTH_BURST: $burst"; fi
  if ! [[ $refresh_rate =~ ^[0-9]+$ ]] || ((refresh_rate < 1)); then
    die "bad GATEWAY_REFRESH_PER_MINUTE: $refresh_rate"
  fi
  if ! [[ $refresh_burst =~ ^[0-9]+$ ]] || ((refresh_burst < 1)); then
    die "bad GATEWAY_REFRESH_BURST: $refresh_burst"
  fi
  if ! [[ $conns =~ ^[0-9]+$ ]] || ((conns < 1)); then die "bad GATEWAY_CONN_PER_CLIENT: $conns"; fi
  if ! [[ $keepalive =~ ^[0-9]+$ ]] || ((keepalive < 1)); then
    die "bad GATEWAY_UPSTREAM_KEEPALIVE: $keepalive"
  fi
  local web_version
  web_version=$(web_version)
  mkdir -p "$DIR"
  # The web app's copy: made again only when web/ changed (a reload leaves the one the old
  # workers serve in place).
  grep -qs "/assets/$web_version/" "$DIR/web/index.html" || render_web "$web_version"
  # shellcheck disable=SC2016 # names of the variables to substitute, not expansions
  RUN_DIR=$DIR envsubst '${RUN_DIR}' <"$TEMPLATE" >"$DIR/nginx.conf"
  # shellcheck disable=SC2016
  GATEWAY_LISTEN=127.0.0.1:$1 REAL_IP_FROM=$real_ip_from \
    USER_RETRY_SERVERS=$user_retry USER_ONCE_SERVERS=$user_once \
    ROOM_RETRY_SERVERS=$room_retry ROOM_ONCE_SERVERS=$room_once \
    RESERVATION_RETRY_SERVERS=$res_retry RESERVATION_ONCE_SERVERS=$res_once \
    AUTH_RATE_PER_MINUTE=$rate AUTH_BURST=$burst AUTH_RETRY_AFTER=$(((60 + rate - 1) / rate)) \
    REFRESH_RATE_PER_MINUTE=$refresh_rate REFRESH_BURST=$refresh_burst \
    REFRESH_RETRY_AFTER=$(((60 + refresh_rate - 1) / refresh_rate)) \
    CONN_PER_CLIENT=$conns UPSTREAM_KEEPALIVE=$keepalive \
    WEB_ROOT=$DIR/web WEB_VERSION=$web_version \
    envsubst '${GATEWAY_LISTEN} ${USER_RETRY_SERVERS} ${USER_ONCE_SERVERS}
              ${ROOM_RETRY_SERVERS} ${ROOM_ONCE_SERVERS}
              ${RESERVATION_RETRY_SERVERS} ${RESERVATION_ONCE_SERVERS} ${REAL_IP_FROM} ${AUTH_RATE_PER_MINUTE} ${AUTH_BURST} ${AUTH_RETRY_AFTER}
              ${REFRESH_RATE_PER_MINUTE} ${REFRESH_BURST} ${REFRESH_RETRY_AFTER}
              ${CONN_PER_CLIENT} ${UPSTREAM_KEEPALIVE} ${WEB_ROOT} ${WEB_VERSION}' \
    <"$GATEWAY" >"$DIR/gateway.conf"

}

start() {
  command -v nginx >/dev/null || die "nginx is not installed (run scripts/deps.sh)"
  command -v envsubst >/dev/null || die "envsubst is not installed (run scripts/deps.sh)"
  master_pid >/dev/null && die "already running (pid $(<"$DIR/nginx.pid")); stop it first"
  render "$@"

  local out url=http://127.0.0.1:$1
  out=$(nginx_cmd -t -q 2>&1) || { echo "$out" >&2; die "invalid configuration $DIR/nginx.conf"; }
  nginx_cmd || die "nginx did not start (see $DIR/error.log)"
  if wait_http "$url/health" 10; then
    echo "$url"
    return 0
  fi
  stop
  tail -n 20 "$DIR/error.log" >&2 || true
  die "gateway did not answer on $url"
}

# The master's workers that accept connections, sorted: nginx retitles a worker "… is shutting
# down" once it has closed its listening sockets.
accepting_workers() { # master pid
  local w
  for w in $(pgrep -P "$1"); do
    [[ $(ps -o args= -p "$w" 2>/dev/null) == "nginx: worker process" ]] && echo "$w"
  done | sort
}

# The running gateway with new port lists: new workers start on the new configuration, the old
# ones stop accepting, finish the requests they hold (their idle client and upstream
# connections closed) and exit.
reload() {
  local pid old new n url=http://127.0.0.1:$1
  pid=$(master_pid) || die "not running (no live nginx master in $DIR/nginx.pid)"
  cp -p "$DIR/gateway.conf" "$DIR/gateway.conf.prev"
  render "$@"
  local out
  if ! out=$(nginx_cmd -t -q 2>&1); then
    echo "$out" >&2
    mv -f "$DIR/gateway.conf.prev" "$DIR/gateway.conf"
    die "invalid configuration $DIR/nginx.conf (the previous gateway.conf is back)"
  fi
  # The workers that accept now (not those an earlier reload left shutting down).
  old=$(accepting_workers "$pid")
  n=$(wc -w <<<"$old")
  nginx_cmd -s reload || die "nginx -s reload failed (see $DIR/error.log)"
  # Done when as many new workers run as before (each has a pid the old ones had not) and no
  # old one accepts any more: each is gone or "shutting down" (nginx's process title once it
  # has closed its listening sockets).
  local deadline=$((SECONDS + 10)) now
  while :; do
    now=$(accepting_workers "$pid")
    new=$(comm -13 <(echo "$old") <(echo "$now"))
    (($(wc -w <<<"$new") >= n)) && [[ -z $(comm -12 <(echo "$old") <(echo "$now")) ]] && break
    ((SECONDS < deadline)) || die "the new workers did not take over (see $DIR/error.log)"
    sleep 0.05
  done
  wait_http "$url/health" 10 || die "gateway did not answer on $url after the reload"
}

stop() {
  local pid workers
  pid=$(master_pid) || { rm -f "$DIR/nginx.pid"; return 0; }
  workers=$(pgrep -P "$pid" || true)
  kill -QUIT "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 5; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 2 || true
  fi
  if alive "$pid"; then
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -KILL "$pid" $workers 2>/dev/null || true
  fi
  rm -f "$DIR/nginx.pid"
}

if [[ $* == web-version ]]; then
  web_version
  exit 0
fi
(($# >= 2)) || usage
cmd=$1
DIR=${2%/}
case $cmd in
  start) (($# == 6)) || usage; shift 2; start "$@" ;;
  reload) (($# == 6)) || usage; shift 2; reload "$@" ;;
  stop) (($# == 2)) || usage; stop ;;
  *) usage ;;
esac
