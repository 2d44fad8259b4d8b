#!/usr/bin/env bash
# Shared prelude and helpers for the end-to-end tests that run aves daemons (sourced,
# after lib.sh; see tests/e2e/README.md, "Writing an e2e test").
#
# The daemon helpers (aves_ctl, ctl_value, control, drops, event, msum, wait_listen, ...)
# take the control socket, namespace or file they work on as an argument. The two-engine
# part (aves_e2e_begin, aves_start_engines, aves_stop_engines) is for the
# scripts/aves-netns.sh topology (a waypoint in ${P}w, a gateway in ${P}r; source that
# file too) and shares these globals with the test script:
#   AVES    the binary ($AVES_BIN, or target/release/aves)
#   PY      python3
#   tmp     a fresh directory, removed at exit; the daemons' configs are
#           $tmp/waypoint.toml and $tmp/gateway.toml, their output $tmp/{w,r}.{out,err}
#   wsock / rsock   the waypoint's / gateway's control sockets ($tmp/w.sock, $tmp/r.sock)
#   w_pid / r_pid   the daemons' PIDs, empty when not running
# aves_e2e_begin installs the EXIT trap aves_e2e_cleanup; a script with more to undo
# (other daemons, namespaces, /etc/netns files) defines e2e_cleanup_extra, which the
# trap calls first.

_aves_lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# --- prelude -----------------------------------------------------------------------

# need_aves NAME: sets AVES (and PY); ends the test NAME as failed if aves is not built.
need_aves() {
  AVES=${AVES_BIN:-$_aves_lib_root/target/release/aves}
  PY=/usr/bin/python3
  [ -x "$AVES" ] || { echo "$1: $AVES not built (cargo build --release)"; echo "$1: 0 passed, 1 failed"; exit 1; }
}

# aves_e2e_begin NAME: need_aves, then makes tmp, wsock, rsock, w_pid, r_pid and the EXIT trap.
aves_e2e_begin() {
  need_aves "$1"
  tmp=$(mktemp -d)
  wsock=$tmp/w.sock
  rsock=$tmp/r.sock
  w_pid=
  r_pid=
  trap aves_e2e_cleanup EXIT
}

# aves_e2e_cleanup: e2e_cleanup_extra, stops both engines and every process in ${P}a/b/i,
# removes the topology and tmp (the EXIT trap).
aves_e2e_cleanup() {
  if declare -F e2e_cleanup_extra >/dev/null; then e2e_cleanup_extra; fi
  [ -n "$w_pid" ] && kill "$w_pid" 2>/dev/null && wait "$w_pid" 2>/dev/null
  [ -n "$r_pid" ] && kill "$r_pid" 2>/dev/null && wait "$r_pid" 2>/dev/null
  for n in a b i; do ip netns pids "${P}$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
  aves_topo_down
  rm -rf "$tmp"
}

# --- the two engines ---------------------------------------------------------------

# aves_wait_engines: waits (up to 20 s) until both control sockets answer or a daemon dies.
aves_wait_engines() {
  for _ in $(seq 1 100); do
    aves_ctl "$rsock" ping >/dev/null 2>&1 && aves_ctl "$wsock" ping >/dev/null 2>&1 && return 0
    if ! kill -0 "$r_pid" 2>/dev/null || ! kill -0 "$w_pid" 2>/dev/null; then return 1; fi
    sleep 0.2
  done
  return 1
}

# aves_start_engines NAME: runs the gateway and the waypoint, checks that both answer (and
# that tap ports joined their bridges); ends the test NAME as failed if either died.
aves_start_engines() {
  ip netns exec "${P}r" "$AVES" run --config "$tmp/gateway.toml" > "$tmp/r.out" 2> "$tmp/r.err" &
  r_pid=$!
  ip netns exec "${P}w" "$AVES" run --config "$tmp/waypoint.toml" > "$tmp/w.out" 2> "$tmp/w.err" &
  w_pid=$!
  aves_wait_engines
  check "waypoint answers on its control socket" aves_ctl "$wsock" ping
  check "gateway answers on its control socket" aves_ctl "$rsock" ping
  [ "$AVES_E2E_PORTS" = tap ] && check "the engines' taps joined their bridges" aves_attach_taps
  if ! kill -0 "$r_pid" 2>/dev/null || ! kill -0 "$w_pid" 2>/dev/null; then
    echo "-- gateway stderr"; cat "$tmp/r.err"; echo "-- waypoint stderr"; cat "$tmp/w.err"
    fail "both daemons running"; summary "$1"; exit 1
  fi
}

# aves_stop ROLE [--totals]: SIGINT to the waypoint's or gateway's daemon; checks exit 0 and
# every mbuf back in its pool (with --totals, prints the totals it wrote at exit first).
aves_stop() {
  local role=$1 pid out rc
  if [ "$role" = waypoint ]; then pid=$w_pid; out=$tmp/w.out; else pid=$r_pid; out=$tmp/r.out; fi
  kill -INT "$pid"
  wait "$pid"; rc=$?
  if [ "$role" = waypoint ]; then w_pid=; else r_pid=; fi
  if [ "${2:-}" = --totals ]; then echo "   -- $role totals"; sed 's/^/     /' "$out"; fi
  check_eq "$role exits 0 on SIGINT" 0 "$rc"
  check_mempool "$role" "$out"
}

# aves_stop_engines: aves_stop for the waypoint, then the gateway.
aves_stop_engines() {
  aves_stop waypoint
  aves_stop gateway
}

# check_mempool NAME OUT: the "mempool free=F size=S" line a daemon wrote to OUT at exit has F = S.
check_mempool() {
  local free size
  free=$(awk '/^mempool/ { split($2, a, "="); print a[2] }' "$2")
  size=$(awk '/^mempool/ { split($3, a, "="); print a[2] }' "$2")
  if [ -n "$size" ] && [ "$free" = "$size" ]; then pass "$1 mempool free == size ($free)"; else fail "$1 mempool free == size" "free '$free', size '$size'"; fi
}

# --- control socket ----------------------------------------------------------------

# aves_ctl SOCK ARGS...: `aves ctl ARGS` against the daemon whose control socket is SOCK.
aves_ctl() { "$AVES" ctl --socket "$1" "${@:2}"; }
# wctl / rctl ARGS...: aves_ctl on the waypoint's / gateway's socket.
wctl() { aves_ctl "$wsock" "$@"; }
rctl() { aves_ctl "$rsock" "$@"; }
# ctl_value SOCK KIND NAME [DEFAULT]: VALUE of the `aves ctl stats` line "KIND NAME VALUE" (DEFAULT, 0, if none).
ctl_value() { aves_ctl "$1" stats | awk -v k="$2" -v n="$3" '$1 == k && $2 == n { print $3 }' | grep . || echo "${4:-0}"; }
# control SOCK NAME: one SETUP-service counter ("control NAME N"), 0 if absent.
control() { ctl_value "$1" control "$2"; }
# drops SOCK REASON: one drop counter ("drop REASON N"), 0 if absent.
drops() { ctl_value "$1" drop "$2"; }
# event SOCK NAME: one event counter ("event NAME N"), 0 if absent.
event() { ctl_value "$1" event "$2"; }

# --- namespaces, servers, metrics ---------------------------------------------------

# inA / inB CMD...: CMD in the initiators' (${P}a) / responders' (${P}b) namespace.
inA() { ip netns exec "${P}a" "$@"; }
inB() { ip netns exec "${P}b" "$@"; }
# http_serve NS ADDR PORT DIR LOG: python3's http.server for DIR on ADDR:PORT in NS, in the background.
http_serve() { ip netns exec "$1" "$PY" -u -m http.server "$3" --bind "$2" --directory "$4" > "$5" 2>&1 & }
# wait_listen NS ADDR:PORT...: waits (up to 15 s) until each ADDR:PORT has a TCP listener in NS.
# (http.server listens only after a reverse lookup of its address, which can take seconds.)
wait_listen() {
  local ns=$1 l a ok
  shift
  for _ in $(seq 1 150); do
    l=$(ip netns exec "$ns" ss -ltn); ok=1
    for a in "$@"; do grep -qF "$a " <<< "$l" || { ok=0; break; }; done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
# wait_soa NS SERVER ZONE [TRIES]: waits (TRIES x 0.1 s, default 50) until SERVER answers ZONE's SOA to dig in NS.
wait_soa() {
  for _ in $(seq 1 "${4:-50}"); do
    ip netns exec "$1" dig +time=1 +tries=1 "@$2" "$3" SOA >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
# scrape_metrics NS ADDR FILE: GET http://ADDR/metrics from namespace NS into FILE.
scrape_metrics() { ip netns exec "$1" curl -sS --max-time 5 "http://$2/metrics" > "$3"; }
# msum FILE NAME [LABEL-FILTER]: the sum of the series NAME (labelled or not) whose labels
# contain LABEL-FILTER (e.g. 'reason="conflict"') in the scrape FILE.
msum() { awk -v n="$2" -v f="${3:-}" '(index($1, n "{") == 1 || $1 == n) && (f == "" || index($1, f)) { s += $2 } END { print s + 0 }' "$1"; }
# mmax FILE NAME [LABEL-FILTER]: the largest of those series (e.g. the fullest lcore's table).
mmax() { awk -v n="$2" -v f="${3:-}" '(index($1, n "{") == 1 || $1 == n) && (f == "" || index($1, f)) && $2 > m { m = $2 } END { print m + 0 }' "$1"; }
