-- Simple IMIX (7 × 64, 4 × 594, 1 × 1518-byte frames, average 361.8 bytes; IP datagrams
-- of 46, 576 and 1500 bytes — the 1500-byte ones fragment at a waypoint, whose tunnel MTU
-- is 1452, unless they carry DF, which pktgen does not set) at full rate, using
-- pktgen's sequence packets (12 entries, one 5-tuple per entry; the 12 entries cycle).
-- Records received Mpps and loss. Settings: aves_pktgen.lua; set-up: README.md.
package.path = package.path .. ";" .. (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua"
local A = require("aves_pktgen")

A.setup()
pktgen.set_range(A.tx, "off")
local mix = { 64, 64, 594, 64, 64, 594, 64, 64, 594, 64, 594, 1518 }
local total = 0
for i, size in ipairs(mix) do
  total = total + size
  pktgen.seqTable(i - 1, A.tx, {
    ["eth_dst_addr"] = A.dst_mac,
    ["eth_src_addr"] = A.src_mac or "02:00:00:00:00:01",
    ["ip_src_addr"] = A.src_ip,
    ["ip_dst_addr"] = A.dst_ip,
    ["sport"] = 1024 + i - 1,
    ["dport"] = 80,
    ["ethType"] = "ipv4",
    ["ipProto"] = A.proto,
    ["vlanid"] = 1,
    ["pktSize"] = size,
  })
end
pktgen.set(A.tx, "seq_cnt", #mix)
local avg = total / #mix
local sent, got, pps = A.trial(100)
local loss = A.record("imix", math.floor(avg + 0.5), 100, sent, got, pps)
A.log("IMIX (avg %.1f B)  sent %d  received %d  %.3f Mpps  loss %.4f %%\n", avg, sent, got, pps / 1e6, loss * 100)
if os.getenv("AVES_PG_NO_EXIT") == nil then os.exit(0) end
