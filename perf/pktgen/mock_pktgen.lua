-- A stand-in for pktgen-dpdk's Lua API, to test the scripts without NICs
-- (perf/pktgen/test.sh). It models a device under test on a 10 Gb/s link that forwards
-- at most MOCK_CAPACITY_MPPS million packets per second (default 5) and drops the rest,
-- emitting MOCK_EXPECT packets per packet received (default 1). Every call checks its
-- arguments the way the scripts must use them; a wrong call raises an error.
local capacity = tonumber(os.getenv("MOCK_CAPACITY_MPPS") or "5") * 1e6
local mult = tonumber(os.getenv("MOCK_EXPECT") or "1")
local line = 10e9

local st = {
  rate = 100, size = 64, range = false, seq = 0, seqsizes = {}, sending = false,
  started_at = 0, now = 0, tx = 0, rx = 0, range_size = nil, calls = {},
}

local function port(p)
  assert(p == "0" or p == "1" or p == "all", "bad port " .. tostring(p))
end

local function account()
  if not st.sending then return end
  local dt = st.now - st.started_at
  local size
  if st.range then
    size = assert(st.range_size, "range on without a packet size")
  elseif st.seq > 0 then
    local sum = 0
    for i = 0, st.seq - 1 do sum = sum + assert(st.seqsizes[i], "seq entry " .. i .. " missing") end
    size = sum / st.seq
  else
    size = st.size
  end
  local offered = st.rate / 100 * line / ((size + 20) * 8)
  local sent = math.floor(offered * dt)
  st.tx = st.tx + sent
  st.rx = st.rx + math.floor(math.min(offered, capacity) * dt) * mult
  st.started_at = st.now
end

pktgen = {}
function pktgen.delay(ms) account(); st.now = st.now + ms / 1000; account() end
function pktgen.stop(p) port(p); account(); st.sending = false end
function pktgen.start(p) port(p); account(); st.sending = true; st.started_at = st.now end
function pktgen.clr() end
function pktgen.set_proto(p, v) port(p); assert(v == "udp" or v == "tcp") end
function pktgen.set_range(p, v) port(p); assert(v == "on" or v == "off"); st.range = (v == "on") end
function pktgen.set(p, k, v)
  port(p)
  if k == "rate" then assert(v > 0 and v <= 100, "rate " .. v); st.rate = v
  elseif k == "size" then st.size = v
  elseif k == "seq_cnt" then assert(v >= 1 and v <= 16, "seq_cnt " .. v); st.seq = v
  else error("pktgen.set: unknown key " .. k) end
end
function pktgen.seqTable(i, p, t)
  port(p)
  assert(i >= 0 and i < 16, "seq index")
  for _, k in ipairs({ "eth_dst_addr", "ip_src_addr", "ip_dst_addr", "sport", "dport", "ipProto", "pktSize" }) do
    assert(t[k] ~= nil, "seqTable: " .. k .. " missing")
  end
  st.seqsizes[i] = t.pktSize
end
function pktgen.portStats(p, kind)
  assert(p == "all" and kind == "port")
  account()
  return { [0] = { opackets = st.tx, ipackets = 0 }, [1] = { opackets = 0, ipackets = st.rx } }
end
local function range_field(name, check)
  return function(p, k, v)
    port(p)
    if name ~= "ip_proto" then
      assert(k == "start" or k == "min" or k == "max" or k == "inc", name .. ": bad key " .. tostring(k))
      check(v)
    end
    if name == "pkt_size" and k == "start" then st.range_size = v end
  end
end
local any = function() end
local ip = function(v) assert(string.match(v, "^%d+%.%d+%.%d+%.%d+$"), "bad address " .. tostring(v)) end
local num = function(v) assert(type(v) == "number" and v >= 0 and v <= 65535, "bad number") end
pktgen.range = {
  dst_mac = range_field("dst_mac", any), src_mac = range_field("src_mac", any),
  src_ip = range_field("src_ip", ip), dst_ip = range_field("dst_ip", ip),
  src_port = range_field("src_port", num), dst_port = range_field("dst_port", num),
  pkt_size = range_field("pkt_size", num), ip_proto = range_field("ip_proto", any),
}
