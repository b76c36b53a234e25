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
