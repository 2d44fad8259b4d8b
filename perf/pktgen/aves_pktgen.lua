-- Shared helpers for the aves pktgen-dpdk scripts (sweep.lua, imix.lua, rfc2544.lua).
--
-- Everything comes from environment variables so one script serves every role:
--   AVES_PG_TX        pktgen port that sends into aves's "in" port       (default "0")
--   AVES_PG_RX        pktgen port that receives aves's "out" traffic     (default "1")
--   AVES_PG_DST_MAC   MAC of aves's "in" port (aves status prints it)    (required)
--   AVES_PG_SRC_MAC   MAC pktgen sends from (default: the port's own)
--   AVES_PG_SRC_IP    initiator address, with prefix  (default "198.51.100.10/24")
--   AVES_PG_DST_IP    destination: B for the router, W for a waypoint   (default "203.0.113.100")
--   AVES_PG_PROTO     "udp" or "tcp"                                    (default "udp")
--   AVES_PG_FLOWS     distinct 5-tuples: source ports 1024.. + FLOWS-1  (default 1024)
--   AVES_PG_SECONDS   seconds per trial                                 (default 10)
--   AVES_PG_SIZES     comma-separated frame sizes w/o CRC (default "64,128,256,512,1024,1280,1464,1518")
--   AVES_PG_OUT       CSV file the results are appended to               (default "aves-pktgen.csv")
--
-- Frame sizes count the 4-byte CRC, as RFC 2544 and pktgen do (64 B = 60 bytes in the
-- mbuf); Gb/s is on the wire: size + 20 bytes of preamble and inter-frame gap.
-- A waypoint's output is 48 bytes longer per packet (the tunnel) and may be fragmented;
-- the scripts therefore compare packet counts, never bytes, and a waypoint run should
-- keep frames at or under 1470 bytes (1452-byte datagrams) unless fragmentation is what is measured.

local M = {}

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

M.tx = env("AVES_PG_TX", "0")
M.rx = env("AVES_PG_RX", "1")
M.dst_mac = env("AVES_PG_DST_MAC", nil)
M.src_mac = env("AVES_PG_SRC_MAC", nil)
M.src_ip = env("AVES_PG_SRC_IP", "198.51.100.10/24")
M.dst_ip = env("AVES_PG_DST_IP", "203.0.113.100")
M.proto = env("AVES_PG_PROTO", "udp")
M.flows = tonumber(env("AVES_PG_FLOWS", "1024"))
M.seconds = tonumber(env("AVES_PG_SECONDS", "10"))
M.out = env("AVES_PG_OUT", "aves-pktgen.csv")

function M.sizes()
  local s = {}
  for v in string.gmatch(env("AVES_PG_SIZES", "64,128,256,512,1024,1280,1464,1518"), "[^,]+") do
    local n = tonumber(v)
    if n == nil or n < 64 or n > 9000 then error("AVES_PG_SIZES: bad size " .. v) end
    s[#s + 1] = n
  end
  return s
end

function M.log(fmt, ...)
  io.write(string.format(fmt, ...))
  io.flush()
end

-- Checks the settings and programs the transmit port: addresses, protocol, and a
-- source-port range giving AVES_PG_FLOWS distinct 5-tuples (range mode).
function M.setup()
  if M.dst_mac == nil then error("AVES_PG_DST_MAC is required (the MAC of aves's in port)") end
  if M.proto ~= "udp" and M.proto ~= "tcp" then error("AVES_PG_PROTO must be udp or tcp") end
  if M.flows == nil or M.flows < 1 or M.flows > 64511 then
    error("AVES_PG_FLOWS must be 1..64511 (one source port each)")
  end
  if M.seconds == nil or M.seconds < 1 then error("AVES_PG_SECONDS must be >= 1") end
  local ip = string.match(M.src_ip, "^[^/]+")
  pktgen.stop("all")
  pktgen.set_proto(M.tx, M.proto)
  pktgen.range.ip_proto(M.tx, M.proto)
  pktgen.range.dst_mac(M.tx, "start", M.dst_mac)
  if M.src_mac ~= nil then pktgen.range.src_mac(M.tx, "start", M.src_mac) end
  for _, k in ipairs({ "start", "min", "max" }) do
    pktgen.range.src_ip(M.tx, k, ip)
    pktgen.range.dst_ip(M.tx, k, M.dst_ip)
    pktgen.range.dst_port(M.tx, k, 80)
  end
  pktgen.range.src_ip(M.tx, "inc", "0.0.0.0")
  pktgen.range.dst_ip(M.tx, "inc", "0.0.0.0")
  pktgen.range.dst_port(M.tx, "inc", 0)
  pktgen.range.src_port(M.tx, "start", 1024)
  pktgen.range.src_port(M.tx, "min", 1024)
  pktgen.range.src_port(M.tx, "max", 1024 + M.flows - 1)
  pktgen.range.src_port(M.tx, "inc", 1)
  pktgen.set_range(M.tx, "on")
end

-- Sets the frame size of the range.
function M.size(n)
  for _, k in ipairs({ "start", "min", "max" }) do pktgen.range.pkt_size(M.tx, k, n) end
  pktgen.range.pkt_size(M.tx, "inc", 0)
end

local function counts()
  local s = pktgen.portStats("all", "port")
  local t, r = s[tonumber(M.tx)], s[tonumber(M.rx)]
  return t.opackets, r.ipackets
end

-- One trial at `rate` percent of line rate for AVES_PG_SECONDS: returns packets sent,
-- packets received (after a 2 s drain), and the received packets per second.
function M.trial(rate)
  pktgen.set(M.tx, "rate", rate)
  pktgen.clr()
  pktgen.delay(500)
  local tx0, rx0 = counts()
  pktgen.start(M.tx)
  pktgen.delay(M.seconds * 1000)
  pktgen.stop(M.tx)
  pktgen.delay(2000)
  local tx1, rx1 = counts()
  local sent, got = tx1 - tx0, rx1 - rx0
  return sent, got, got / M.seconds
end

-- Appends one CSV row (header written when the file is new).
function M.record(test, size, rate, sent, got, pps)
  local f = io.open(M.out, "r")
  local new = (f == nil)
  if f then f:close() end
  f = assert(io.open(M.out, "a"))
  if new then f:write("test,size,rate_percent,flows,proto,sent,received,loss,rx_mpps,rx_gbps\n") end
  local loss = (sent > 0) and (sent - got) / sent or 0
  f:write(string.format("%s,%d,%.3f,%d,%s,%d,%d,%.6f,%.3f,%.3f\n", test, size, rate, M.flows,
    M.proto, sent, got, loss, pps / 1e6, pps * (size + 20) * 8 / 1e9))
  f:close()
  return loss
end

return M
