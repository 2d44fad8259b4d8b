-- Size sweep at full rate: for each AVES_PG_SIZES frame size, send for AVES_PG_SECONDS at
-- 100 % of line rate and record what aves forwarded (Mpps, Gb/s on the wire including
-- preamble and inter-frame gap: size + 20 bytes) and the loss. See aves_pktgen.lua for
-- the settings and perf/pktgen/README.md for the set-up.
--
--   pktgen -l 0-2 -n 4 -a NIC0 -a NIC1 -- -P -m "[1:2].0,[1:2].1" -f perf/pktgen/sweep.lua
package.path = package.path .. ";" .. (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua"
local A = require("aves_pktgen")

A.setup()
A.log("aves size sweep: %s flows=%d, %d s per size, results in %s\n", A.proto, A.flows, A.seconds, A.out)
for _, size in ipairs(A.sizes()) do
  A.size(size)
  local sent, got, pps = A.trial(100)
  local loss = A.record("sweep", size, 100, sent, got, pps)
  A.log("%5d B  sent %12d  received %12d  %8.3f Mpps  loss %.4f %%\n", size, sent, got, pps / 1e6, loss * 100)
end
if os.getenv("AVES_PG_NO_EXIT") == nil then os.exit(0) end
