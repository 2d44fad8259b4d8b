#!/usr/bin/env bash
# End-to-end: `aves dns --config FILE` alone (no DPDK, no EAL) in a network namespace,
# queried by dig (dnsutils). The stub binder sends no SETUP, so host A queries must end
# in SERVFAIL after setup_timeout_ms; everything else is the zone's own answers: SOA/NS
# with their TTL, glue, NODATA, empty non-terminals, NXDOMAIN, AXFR/IXFR refused, random
# garbage on UDP and TCP survived, malformed queries answered FORMERR or not at all,
# AXFR over UDP refused, a UDP flood from one /24 rate limited with slip (TC=1) while
# another /24 is answered, a name scanner silenced, counters printed at SIGTERM.
# (Answers with waypoint addresses and TTL 0 are checked by the in-process dig test in
# control/src/dns/mod.rs, which has a binder that accepts.)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
need_root dns-e2e

AVES=${AVES_BIN:-$root/target/release/aves}
[ -x "$AVES" ] || { echo "dns-e2e: $AVES not built (cargo build --release)"; echo "dns-e2e: 0 passed, 1 failed"; exit 1; }
P=${AVES_NS_PREFIX:-avt}
NS=${P}dns
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

in_ns() { ip netns exec "$NS" "$@"; }
q() { in_ns dig @127.0.0.1 -p 53 +time=2 +tries=1 "$@"; }
status_of() { q +comments "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

cat > "$tmp/dns.toml" <<'TOML'
[dns]
listen = "127.0.0.1:53"
zone = "aves.example."
intranet = ["10.1.0.0/16"]
setup_timeout_ms = 300

[[dns.ns]]
name = "ns1"
address = "192.0.2.53"

[[dns.waypoint]]
control = "192.0.2.10:4500"
addresses = ["198.51.100.10-198.51.100.17"]

[[dns.gateway]]
id = 1
address = "203.0.113.7"

[[dns.host]]
name = "b.home1"
gateway_id = 1
address = "192.168.1.10"
services = ["tcp22"]

[dns.rrl]
responses_per_s = 20
burst = 40
slip = 2

[dns.nx_penalty]
threshold = 5
window_s = 60
ban_s = 600
TOML

echo "== dns e2e: config"
check "check-config accepts a DNS-only file" "$AVES" check-config "$tmp/dns.toml"
sed 's/gateway_id = 1/gateway_id = 2/' "$tmp/dns.toml" > "$tmp/bad.toml"
out=$("$AVES" dns --config "$tmp/bad.toml" 2>&1); rc=$?
check_eq "a bad [dns] config is refused" 1 "$rc"
check "the error names the key" grep -q "dns.host\[0\].gateway_id" <<< "$out"

echo "== start aves dns in $NS"
ip netns del "$NS" 2>/dev/null
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" "$AVES" dns --config "$tmp/dns.toml" > "$tmp/dns.out" 2> "$tmp/dns.err" &
pid=$!
for _ in $(seq 1 50); do [ -n "$(status_of aves.example. SOA)" ] && break; sleep 0.1; done

echo "== zone answers"
check_eq "SOA at the apex" NOERROR "$(status_of aves.example. SOA)"
soa=$(q +noall +answer aves.example. SOA)
check_eq "SOA TTL is the zone's ttl (cacheable)" 3600 "$(awk '{print $2}' <<< "$soa")"
check "answers are authoritative" grep -q "flags: qr aa" <<< "$(q +comments aves.example. SOA)"
check_eq "NS of the apex" ns1.aves.example. "$(q +short aves.example. NS)"
check "NS answer carries glue" grep -q "192.0.2.53" <<< "$(q +noall +additional aves.example. NS)"
check_eq "in-zone name server address" 192.0.2.53 "$(q +short ns1.aves.example. A)"
check_eq "AAAA for a host: NOERROR" NOERROR "$(status_of b.home1.aves.example. AAAA)"
check_eq "... without data" "" "$(q +short b.home1.aves.example. AAAA)"
check_eq "empty non-terminal: NOERROR, not NXDOMAIN" NOERROR "$(status_of home1.aves.example. A)"
check_eq "outside the zone: REFUSED" REFUSED "$(status_of example.org. A)"

echo "== host A with the stub binder (no SETUP sent): SERVFAIL after the timeout"
t0=$(date +%s%N)
st=$(status_of b.home1.aves.example. A)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_eq "host A: SERVFAIL (no ACCEPT)" SERVFAIL "$st"
check_ge "... after setup_timeout_ms (300)" 300 "$ms"
check_eq "service name is the same host (SERVFAIL too)" SERVFAIL "$(status_of tcp22.b.home1.aves.example. A)"

echo "== zone transfer refused (AVES §6.2)"
axfr=$(q aves.example. AXFR)
check "AXFR over TCP fails" grep -q "Transfer failed" <<< "$axfr"
check "AXFR leaks no host name" bash -c "! grep -q b.home1 <<< \"\$1\"" _ "$axfr"
check_eq "IXFR over UDP: REFUSED" REFUSED "$(status_of +notcp aves.example. IXFR=1)"

echo "== garbage"
for n in 0 1 11 12 13 64 512 1500; do
  in_ns bash -c "head -c $n /dev/urandom > /dev/udp/127.0.0.1/53" 2>/dev/null
done
in_ns bash -c 'printf "\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01" > /dev/udp/127.0.0.1/53'
in_ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/53; printf "\xff\xff\x01\x02" >&3; exec 3>&-' 2>/dev/null
sleep 0.2
check "server alive after garbage" kill -0 "$pid"
check_eq "still answers (UDP)" NOERROR "$(status_of +notcp aves.example. SOA)"
check_eq "still answers (TCP)" NOERROR "$(status_of +tcp aves.example. SOA)"

echo "== a UDP flood from one /24: response rate limiting with slip"
for h in $(seq 1 10); do ip -n "$NS" addr add "10.9.1.$h/32" dev lo; done
ip -n "$NS" addr add 10.9.2.1/32 dev lo
ip -n "$NS" addr add 10.9.2.2/32 dev lo
in_ns python3 "$here/dns_flood.py" 127.0.0.1 10.9.1.0 10.9.2.0 3 2000 > "$tmp/flood.out"
tr '\n' ' ' < "$tmp/flood.out"; echo
fl() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/flood.out"; }
sent=$(fl flood_sent); ans=$(fl flood_answered); tc=$(fl flood_tc); secs=$(( ($(fl elapsed_ms) + 999) / 1000 ))
check_ge "the flood sent >= 5000 queries" 5000 "$sent"
check_ge "the burst (40) was answered" 40 "$ans"
check_ge "no more than burst + 20/s was answered" "$ans" "$((40 + 20 * secs))"
limited=$((sent - ans))
check_ge "about every 2nd limited query slipped (TC=1): at least 45%" "$((limited * 45 / 100))" "$tc"
check_ge "... at most 55% (limited $limited)" "$tc" "$((limited * 55 / 100))"
check_eq "the other /24 got every answer" "$(fl other_sent)" "$(fl other_answered)"
check_eq "... none truncated" 0 "$(fl other_tc)"
check_eq "a query cut in its question: FORMERR" 1 "$(fl cut_rcode)"
check_eq "a 5-byte packet: no answer" 0 "$(fl tiny_answered)"
check_eq "AXFR over UDP: REFUSED" 5 "$(fl axfr_udp_rcode)"
check_eq "... with no records" 0 "$(fl axfr_udp_answers)"
check_eq "a client of the limited /24 is answered afterwards (dig follows TC to TCP)" NOERROR \
  "$(in_ns dig @127.0.0.1 -b 10.9.1.1 +time=2 +tries=1 +comments aves.example. SOA | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')"

echo "== a name scanner is ignored (AVES §6.2)"
for i in 1 2 3 4 5; do st=$(status_of "scan$i.aves.example." A); done
check_eq "names that do not exist: NXDOMAIN" NXDOMAIN "$st"
check_eq "the 6th miss still answered (threshold 5)" NXDOMAIN "$(status_of scan6.aves.example. A)"
check_eq "then nothing at all, even for the apex" "" "$(status_of aves.example. SOA)"

echo "== stop"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
check_eq "SIGTERM: clean exit" 0 "$rc"
cnt() { awk -v k="$1" '$1 == "dns" && $2 == k { print $3 }' "$tmp/dns.out"; }
check_ge "counted refused transfers" 2 "$(cnt answer_refused_transfer)"
check_eq "counted one ban" 1 "$(cnt bans)"
check_ge "counted dropped queries of the banned" 1 "$(cnt drop_banned)"
check_eq "counted SETUP timeouts" 2 "$(cnt servfail_timeout)"
check_eq "no session answers with the stub" 0 "$(cnt answer_session)"
check_eq "counted every slip" "$tc" "$(cnt rrl_slipped)"
check_ge "counted the dropped (limited - slipped)" "$((limited - tc - limited / 50))" "$(cnt rrl_dropped)"
summary dns-e2e
