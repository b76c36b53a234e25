# shellcheck shell=bash
# Helpers shared by the shell scripts; sourced, never run:
#   . "$ROOT/scripts/lib.sh"
# Linux only (reads /proc), like the rest of the suite's scripts.

# alive PID: true while process PID exists and is not a zombie (a dead child that nobody has
# reaped yet counts as dead).
alive() {
  local stat state
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  # /proc/PID/stat is "PID (COMM) STATE …"; COMM may itself hold spaces and parentheses.
  state=${stat##*) }
  [[ ${state%% *} != Z ]]
}

# wait_gone PID SECONDS: waits until PID is gone (or a zombie, which its parent has to reap);
# returns 0 when it went in time, 1 when it is still alive after SECONDS.
wait_gone() {
  local pid=$1 tenths=$(($2 * 10))
  while ((tenths-- > 0)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  ! alive "$pid"
}

# wait_http URL SECONDS [PID]: waits until URL answers with a 2xx status; returns 0 then, 1 after
# SECONDS or as soon as process PID (the server being waited for, when given) is no longer alive.
wait_http() {
  local url=$1 tenths=$(($2 * 10)) pid=${3:-}
  while ((tenths-- > 0)); do
    curl -fsS --max-time 1 -o /dev/null "$url" 2>/dev/null && return 0
    [[ -z $pid ]] || alive "$pid" || return 1
    sleep 0.1
  done
  return 1
}

# port_valid VALUE: true when VALUE is a TCP port number, 1-65535 in decimal without leading zeros
# (bash would read "010" as octal).
port_valid() {
  [[ $1 =~ ^[1-9][0-9]{0,4}$ ]] && (($1 <= 65535))
}

# A daemon of the scripts (Mailpit, the OIDC provider): a background process whose pid is kept in
# DIR/NAME.pid and whose output goes to DIR/NAME.log.  MATCH is a word of its command line (the
# program's path), so that a pid file naming a recycled pid is not mistaken for the daemon.

# daemon_pid DIR NAME MATCH: prints the pid from DIR/NAME.pid when that process is alive and is
# the daemon; returns 1 otherwise.
daemon_pid() {
  local pid file=$1/$2.pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$3" || return 1
  echo "$pid"
}

# daemon_start DIR NAME MATCH READY_URL SECONDS COMMAND [ARGS…]: starts COMMAND in the background
# (stdin /dev/null, stdout and stderr appended to DIR/NAME.log, pid in DIR/NAME.pid) and waits
# until READY_URL answers with a 2xx status.  Returns 0 then.  Returns 1, with the reason on stderr
# (prefixed with the calling script's name), when DIR/NAME.pid names a live daemon already, or when
# COMMAND died or did not answer within SECONDS: then it is killed, the pid file is removed and
# the last 20 lines of the log are printed.
daemon_start() {
  local dir=$1 name=$2 match=$3 url=$4 seconds=$5 pid
  shift 5
  mkdir -p "$dir" || return 1
  if pid=$(daemon_pid "$dir" "$name" "$match"); then
    echo "${0##*/}: already running (pid $pid); stop it first" >&2
    return 1
  fi
  "$@" >>"$dir/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/$name.pid"
  wait_http "$url" "$seconds" "$pid" && return 0
  kill "$pid" 2>/dev/null || true
  rm -f "$dir/$name.pid"
  tail -n 20 "$dir/$name.log" >&2 || true
  echo "${0##*/}: $name did not answer at $url within $seconds s" >&2
  return 1
}

# daemon_stop DIR NAME MATCH: SIGTERM to the daemon (as daemon_pid finds it), SIGKILL when it is
# still alive 5 s later; removes DIR/NAME.pid.  A no-op when it is not running.
daemon_stop() {
  local pid
  if pid=$(daemon_pid "$1" "$2" "$3"); then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1/$2.pid"
}
