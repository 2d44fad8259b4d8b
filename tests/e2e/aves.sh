#!/usr/bin/env bash
# End-to-end: the AVES roles (paper §3.2, §5.2) with real Linux stacks.
#
# Initiators A (198.51.100.10) and A2 (198.51.100.11) reach the private responder B
# (10.0.0.2) through the waypoint W (aves, role waypoint, pool 203.0.113.100-115) and
# B's AVES-aware NAT gateway R (aves, role gateway, 192.0.2.2 / 10.0.0.1); a Linux
# namespace plays the Internet between them (scripts/aves-netns.sh). Shows: the binding
# admission rule, HTTP through the tunnel in plain mode (B sees A's address) and in
# multi-homing mode (B sees R's private address), ping and traceroute answered with W's
# address, a 20 MB download and a 20 MB upload with checksums, path MTU discovery
# through the tunnel (A learns 1452), a datagram larger than the tunnel MTU fragmented by
# W and reassembled by R, ICMP host unreachable for an initiator without a binding,
# forged tunnel packets dropped by R, a binding removed at run time, and every mbuf back
# in both pools at shutdown.
#
# AVES_E2E_PORTS=af_packet (default) or tap: how the engines attach to their links
# (scripts/aves-netns.sh). With af_packet the kernel reassembles fragments before DPDK,
# so R's own reassembly is checked only with tap. AVES_W_LCORES / AVES_R_LCORES (or
# AVES_LCORES): EAL core lists. AVES_BIN: the aves binary.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/e2e/aves-lib.sh
. "$here/aves-lib.sh"
# shellcheck source=scripts/aves-netns.sh
. "$root/scripts/aves-netns.sh"
need_root aves-e2e

aves_e2e_begin aves-e2e
inI() { ip netns exec "${P}i" "$@"; }

A=198.51.100.10
A2=198.51.100.11
W=203.0.113.100
W2=203.0.113.101
R=192.0.2.2
B=10.0.0.2

# --- helper programs (Python standard library only) -------------------------------

# B's UDP sink: logs "SOURCE LENGTH FIRST-6-BYTES-HEX" per datagram, answers "got LENGTH".
cat > "$tmp/udp_sink.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "a", buffering=1) as log:
    while True:
        data, peer = s.recvfrom(65535)
        log.write(f"{peer[0]} {len(data)} {data[:6].hex()}\n")
        s.sendto(f"got {len(data)}".encode(), peer)
PY

# A's sender: one datagram of N bytes with DF clear (IP_PMTUDISC_DONT), prints the answer.
cat > "$tmp/udp_send.py" <<'PY'
import socket, sys
src, dst, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT
s.bind((src, 0))
s.connect((dst, port))
s.settimeout(3)
s.send(bytes(i % 251 for i in range(n)))
print(s.recv(100).decode())
PY

# Forged tunnel packets from the Internet: a well-formed AVES header (docs/protocol.md:
# version 1, no flags, KEY_ID, reserved zero) with a random tag over a valid inner
# [A -> B] UDP datagram, COUNT times, to R's tunnel port.
cat > "$tmp/forge.py" <<'PY'
import os, socket, struct, sys
src, dst, port, count, key_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def csum(b):
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
payload = b"forged"
udp = struct.pack("!HHHH", 40000, 9000, 8 + len(payload), 0) + payload
hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                  socket.inet_aton("198.51.100.10"), socket.inet_aton("10.0.0.2"))
hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
for _ in range(count):
    s.sendto(bytes([0x10, key_id, 0, 0]) + os.urandom(16) + hdr + udp, (dst, port))
PY

echo "== aves e2e: topology (engine ports: $AVES_E2E_PORTS)"
aves_topo_up
waypoint_config "$tmp/waypoint.toml" "$wsock"
gateway_config "$tmp/gateway.toml" "$rsock"
check "check-config accepts the waypoint config" "$AVES" check-config "$tmp/waypoint.toml"
check "check-config accepts the gateway config" "$AVES" check-config "$tmp/gateway.toml"
check "the Linux Internet router forwards A -> R's link" inA ping -c 1 -W 2 192.0.2.1
check "the Linux Internet router forwards A -> W's link" inA ping -c 1 -W 2 203.0.113.1

echo "== B: HTTP server (index.html + 20 MB) and UDP sink"
mkdir -p "$tmp/www"
echo "<html><body>AVES responder B $(date +%s%N)</body></html>" > "$tmp/www/index.html"
head -c 20000000 /dev/urandom > "$tmp/www/big.bin"
http_serve "${P}b" "$B" 8000 "$tmp/www" "$tmp/http.log"
inB "$PY" -u "$tmp/udp_sink.py" "$B" 9000 "$tmp/udp.log" > "$tmp/udp_sink.err" 2>&1 &

echo "== start the gateway in ${P}r and the waypoint in ${P}w"
aves_start_engines aves-e2e
wait_listen "${P}b" "$B:8000"

echo "== the engines' own addresses"
check "ping W's interface address from A" inA ping -c 2 -W 2 203.0.113.2
check "ping R's public address from A" inA ping -c 2 -W 2 "$R"
check "ping R's private address from B" inB ping -c 2 -W 2 10.0.0.1
inI ping -c 1 -W 2 "$W" >/dev/null 2>&1
mac_w=$(aves_w_mac)
check_eq "the Internet router resolved pool address $W to W (ARP)" "$mac_w" "$(inI ip neigh show "$W" dev iw | awk '{print $3}')"

echo "== bindings (admission rule: one responder per initiator and waypoint address)"
check "binding add $A $W via $R to $B" wctl binding add "$A" "$W" via "$R" to "$B"
out=$(wctl binding add "$A" "$W" via "$R" to 10.0.0.3 2>&1); rc=$?
echo "$out" | sed 's/^/     /'
if [ "$rc" != 0 ]; then pass "same pair to another responder refused"; else fail "same pair to another responder refused" "$out"; fi

echo "== HTTP through the tunnel, plain mode"
got=$(inA curl -s --max-time 10 "http://$W:8000/" 2>&1)
check_eq "curl http://$W:8000/ from A returns B's index.html" "$(cat "$tmp/www/index.html")" "$got"
sleep 0.3
if grep -q "^$A .*\"GET / " "$tmp/http.log"; then pass "B's log shows the initiator's address $A (plain mode)"; else fail "B's log shows $A" "$(tail -3 "$tmp/http.log" | tr '\n' ' ')"; fi

echo "== ping through the tunnel"
out=$(inA ping -c 3 -W 2 "$W" 2>&1)
echo "$out" | grep -E "bytes from|packet loss" | sed 's/^/     /'
if echo "$out" | grep -q " 0% packet loss" && echo "$out" | grep -q "bytes from $W:"; then
  pass "ping A -> $W answered by B through the tunnel, reply from $W"
else
  fail "ping A -> $W through the tunnel" "$(echo "$out" | tail -2 | tr '\n' ' ')"
fi

echo "== traceroute through the tunnel"
tr=$(inA traceroute -n -q 1 -w 2 -m 6 "$W" 2>&1)
echo "$tr" | sed 's/^/     /'
last=$(echo "$tr" | awk '$1 ~ /^[0-9]+$/ { hop = $2 } END { print hop }')
check_eq "traceroute's last hop is the waypoint address" "$W" "$last"

echo "== a datagram larger than the tunnel MTU (DF clear)"
if [ "$AVES_E2E_PORTS" = tap ]; then
  # A fragments it; W translates and tunnels each fragment, fragmenting the outer
  # datagrams; R reassembles those, B reassembles A's fragments.
  n=3000
else
  # Fits A's link (1500), not the tunnel (1452): W fragments the outer datagram. With
  # af_packet ports R's kernel reassembles it before DPDK sees it (the driver's
  # PACKET_FANOUT_FLAG_DEFRAG), and a datagram A fragments would reach W reassembled and
  # truncated to an af_packet frame: R's reassembly is tested with AVES_E2E_PORTS=tap.
  n=1472
fi
fm0=$(event "$wsock" fragments_made); dr0=$(event "$rsock" datagrams_reassembled)
got=$(inA timeout 10 "$PY" "$tmp/udp_send.py" "$A" "$W" 9000 "$n" 2>&1)
check_eq "A sends $n bytes to $W:9000 and gets B's answer" "got $n" "$got"
sleep 0.3
if grep -q "^$A $n " "$tmp/udp.log"; then pass "B received the $n-byte datagram whole, from $A"; else fail "B received the $n-byte datagram whole" "$(tail -3 "$tmp/udp.log" | tr '\n' ' ')"; fi
check_ge "waypoint fragmented outer datagrams (fragments_made delta)" 1 "$(( $(event "$wsock" fragments_made) - fm0 ))"
if [ "$AVES_E2E_PORTS" = tap ]; then
  check_ge "gateway reassembled outer datagrams (datagrams_reassembled delta)" 1 "$(( $(event "$rsock" datagrams_reassembled) - dr0 ))"
fi

echo "== 20 MB download (B -> A) with curl"
check "curl downloads 20 MB" inA curl -s --max-time 120 -o "$tmp/down.bin" "http://$W:8000/big.bin"
check_eq "download matches (sha256)" "$(sha256sum < "$tmp/www/big.bin")" "$(sha256sum < "$tmp/down.bin" 2>/dev/null)"

echo "== 20 MB upload (A -> B) with socat: path MTU discovery through the tunnel"
mtu0=$(drops "$wsock" mtu_exceeded); icmp0=$(event "$wsock" icmp_sent)
head -c 20000000 /dev/urandom > "$tmp/up.src"
inB socat -u TCP-LISTEN:5001,bind="$B",reuseaddr OPEN:"$tmp/up.dst",creat,trunc &
wait_listen "${P}b" "$B:5001"
check "socat uploads 20 MB" timeout 120 ip netns exec "${P}a" socat -u FILE:"$tmp/up.src" TCP:"$W":5001
sleep 0.5
check_eq "upload matches (sha256)" "$(sha256sum < "$tmp/up.src")" "$(sha256sum < "$tmp/up.dst" 2>/dev/null)"
rg=$(inA ip route get "$W" 2>&1)
echo "$rg" | sed 's/^/     /'
check_eq "A learned the tunnel's path MTU for $W" "1452" "$(echo "$rg" | grep -o 'mtu [0-9]*' | awk '{print $2}')"
check_ge "waypoint counted mtu_exceeded (delta)" 1 "$(( $(drops "$wsock" mtu_exceeded) - mtu0 ))"
check_ge "waypoint sent ICMP (icmp_sent delta)" 1 "$(( $(event "$wsock" icmp_sent) - icmp0 ))"

echo "== an initiator without a binding ($A2)"
nb0=$(drops "$wsock" no_binding)
t0=$(date +%s%N)
out=$(inA curl -s --max-time 10 --interface "$A2" "http://$W:8000/" 2>&1); rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$rc" = 7 ] && [ "$ms" -lt 3000 ]; then pass "curl from $A2 fails fast ($ms ms, exit $rc: host unreachable)"; else fail "curl from $A2 fails fast" "exit $rc after $ms ms: $out"; fi
out=$(inA ping -c 1 -W 2 -I "$A2" "$W" 2>&1)
if echo "$out" | grep -q "Destination Host Unreachable"; then pass "ping from $A2 gets ICMP host unreachable"; else fail "ping from $A2 gets ICMP host unreachable" "$(echo "$out" | tr '\n' ' ')"; fi
check_ge "waypoint counted no_binding (delta)" 2 "$(( $(drops "$wsock" no_binding) - nb0 ))"

echo "== multi-homing mode ($A2 -> $W2)"
check "binding add $A2 $W2 via $R to $B mode multihoming" wctl binding add "$A2" "$W2" via "$R" to "$B" mode multihoming
got=$(inA curl -s --max-time 10 --interface "$A2" "http://$W2:8000/" 2>&1)
check_eq "curl http://$W2:8000/ from $A2 returns B's index.html" "$(cat "$tmp/www/index.html")" "$got"
sleep 0.3
if grep -q "^10.0.0.1 .*\"GET / " "$tmp/http.log"; then pass "B's log shows R's private address 10.0.0.1 (multi-homing)"; else fail "B's log shows 10.0.0.1" "$(tail -3 "$tmp/http.log" | tr '\n' ' ')"; fi
if grep -q "^$A2 " "$tmp/http.log"; then fail "B never sees $A2 (multi-homing hides the initiator)" "$(grep "^$A2 " "$tmp/http.log" | head -1)"; else pass "B never sees $A2 (multi-homing hides the initiator)"; fi
out=$(inA ping -c 2 -W 2 -I "$A2" "$W2" 2>&1)
if echo "$out" | grep -q " 0% packet loss" && echo "$out" | grep -q "bytes from $W2:"; then
  pass "ping $A2 -> $W2 through the tunnel (multi-homing), reply from $W2"
else
  fail "ping $A2 -> $W2 through the tunnel (multi-homing)" "$(echo "$out" | tail -2 | tr '\n' ' ')"
fi

echo "== two initiators, one waypoint address, two responders, at the same time"
B2=10.0.0.3
mkdir -p "$tmp/www2"
echo "<html><body>AVES responder B2 $(date +%s%N)</body></html>" > "$tmp/www2/index.html"
http_serve "${P}b" "$B2" 8000 "$tmp/www2" "$tmp/http2.log"
wait_listen "${P}b" "$B2:8000"
check "binding add $A2 $W via $R to $B2 (same waypoint address, another initiator)" wctl binding add "$A2" "$W" via "$R" to "$B2"
pids=()
for i in 1 2 3; do
  inA curl -s --max-time 10 --interface "$A" "http://$W:8000/" > "$tmp/c1.$i" 2>&1 &
  pids+=($!)
  inA curl -s --max-time 10 --interface "$A2" "http://$W:8000/" > "$tmp/c2.$i" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
ok1=1; ok2=1
for i in 1 2 3; do
  cmp -s "$tmp/c1.$i" "$tmp/www/index.html" || ok1=0
  cmp -s "$tmp/c2.$i" "$tmp/www2/index.html" || ok2=0
done
if [ "$ok1" = 1 ]; then pass "$A through $W reaches B (3 concurrent fetches)"; else fail "$A through $W reaches B" "$(cat "$tmp/c1.1")"; fi
if [ "$ok2" = 1 ]; then pass "$A2 through $W reaches B2 (3 concurrent fetches)"; else fail "$A2 through $W reaches B2" "$(cat "$tmp/c2.1")"; fi
if grep -q "^$A2 .*\"GET / " "$tmp/http2.log" && ! grep -q "^$A2 " "$tmp/http.log"; then
  pass "B2's log shows $A2, B's never does"
else
  fail "B2's log shows $A2, B's never does" "$(tail -2 "$tmp/http2.log" | tr '\n' ' ')"
fi

echo "== a dynamic binding goes when its last TCP connection closes (AVES §5.2)"
W3=203.0.113.102
check "binding add $A2 $W3 via $R to $B dynamic" wctl binding add "$A2" "$W3" via "$R" to "$B" dynamic
got=$(inA curl -s --max-time 10 --interface "$A2" "http://$W3:8000/" 2>&1)
check_eq "curl through the dynamic binding" "$(cat "$tmp/www/index.html")" "$got"
sleep 0.3
out=$(inA curl -s --max-time 10 --interface "$A2" "http://$W3:8000/" 2>&1); rc=$?
if [ "$rc" = 7 ]; then pass "after the connection closed the binding is gone (next curl: host unreachable)"; else fail "the binding is gone after the close" "exit $rc: $out"; fi

echo "== outbound: B reaches an Internet host through R (NAT44)"
mkdir -p "$tmp/wwwa"
echo "served by A" > "$tmp/wwwa/index.html"
http_serve "${P}a" "$A" 8080 "$tmp/wwwa" "$tmp/httpa.log"
wait_listen "${P}a" "$A:8080"
got=$(inB curl -s --max-time 10 "http://$A:8080/" 2>&1)
check_eq "curl from B to http://$A:8080/ through R" "served by A" "$got"
sleep 0.2
if grep -q "^$R .*\"GET / " "$tmp/httpa.log"; then pass "A's server sees R's public address $R (NAT44)"; else fail "A's server sees $R" "$(tail -2 "$tmp/httpa.log" | tr '\n' ' ')"; fi
check "ping from B to $A through R (NAT44 echo)" inB ping -c 2 -W 2 "$A"
if inA "$PY" - "$A" "$R" <<'PYEOF'
import socket, sys
# An unsolicited datagram to R's public address at a NAT port: filtered, never reaches B.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
for p in range(20000, 20064):
    s.sendto(b"unsolicited", (sys.argv[2], p))
PYEOF
then pass "sent 64 unsolicited datagrams to R's NAT ports"; else fail "sent unsolicited datagrams"; fi
sleep 0.3
check_ge "gateway filtered them (nat_no_mapping)" 64 "$(drops "$rsock" nat_no_mapping)"

echo "== forged tunnel packets from the Internet"
inI ping -c 1 -W 2 "$R" >/dev/null 2>&1
bt0=$(drops "$rsock" auth_bad_tag); uk0=$(drops "$rsock" auth_unknown_key)
check "send 100 packets with key id $AVES_E2E_KEY_ID and a wrong tag" inI "$PY" "$tmp/forge.py" 192.0.2.1 "$R" 4797 100 "$AVES_E2E_KEY_ID"
check "send 10 packets with an unknown key id" inI "$PY" "$tmp/forge.py" 192.0.2.1 "$R" 4797 10 $(( (AVES_E2E_KEY_ID + 77) % 256 ))
sleep 0.5
check_ge "gateway dropped them: auth_bad_tag (delta)" 100 "$(( $(drops "$rsock" auth_bad_tag) - bt0 ))"
check_ge "gateway dropped them: auth_unknown_key (delta)" 10 "$(( $(drops "$rsock" auth_unknown_key) - uk0 ))"
# "forged" in hex: the payload of every forged inner datagram.
if grep -q " 666f72676564$" "$tmp/udp.log"; then fail "no forged datagram reached B"; else pass "no forged datagram reached B ($(wc -l < "$tmp/udp.log") datagrams logged)"; fi

echo "== a binding removed at run time"
check "binding del $A $W" wctl binding del "$A" "$W"
out=$(inA ping -c 1 -W 2 -I "$A" "$W" 2>&1)
if echo "$out" | grep -q "Destination Host Unreachable"; then pass "ping from $A now gets ICMP host unreachable"; else fail "ping from $A now gets ICMP host unreachable" "$(echo "$out" | tr '\n' ' ')"; fi
if wctl binding del "$A" "$W" >/dev/null 2>&1; then fail "deleting a missing binding refused"; else pass "deleting a missing binding refused"; fi
check "the multi-homing binding still works" inA curl -s -o /dev/null --max-time 10 --interface "$A2" "http://$W2:8000/"

if [[ "${AVES_R_LCORES:-${AVES_LCORES:-1}}" == *,* ]]; then
  echo "== gateway on several lcores (decision 0006)"
  check_ge "gateway handed packets to their flow's owner lcore (handed_off)" 1 "$(event "$rsock" handed_off)"
  check_eq "no handoff failed" 0 "$(drops "$rsock" handoff_failed)"
fi

echo "== shutdown (SIGINT): exit 0, every mbuf back in the pool"
aves_stop waypoint --totals
aves_stop gateway --totals

summary aves-e2e
