-- RFC 2544 §26.1-style throughput: for each frame size, the highest rate (percent of line
-- rate) at which aves forwards every packet (loss <= AVES_PG_LOSS, default 0), found by
-- binary search between 0 and 100 % to AVES_PG_RESOLUTION percent (default 0.5), each
-- trial AVES_PG_SECONDS long (RFC 2544 asks for 60 s; 10 s is the default here, say
-- which you used), then confirmed once at the found rate. A waypoint emits one tunnel
-- packet per packet (two when it fragments): set AVES_PG_EXPECT=2 for the fragmenting
-- workload so "no loss" means received = 2 × sent.
package.path = package.path .. ";" .. (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua"
local A = require("aves_pktgen")

local max_loss = tonumber(os.getenv("AVES_PG_LOSS") or "0")
local resolution = tonumber(os.getenv("AVES_PG_RESOLUTION") or "0.5")
local expect = tonumber(os.getenv("AVES_PG_EXPECT") or "1")

-- Loss ratio of one trial at `rate`, with the received count scaled by `expect`.
local function loss_at(size, rate, tag)
  local sent, got, pps = A.trial(rate)
  local per = math.floor(got / expect)
  local loss = A.record(tag, size, rate, sent, per, pps / expect)
  A.log("  %5d B at %7.3f %%: sent %d, received %d (/%d), loss %.5f %%\n", size, rate, sent, got, expect, loss * 100)
  return loss, pps / expect
end

A.setup()
A.log("aves RFC 2544 throughput: loss <= %g, resolution %g %%, %d s trials\n", max_loss, resolution, A.seconds)
for _, size in ipairs(A.sizes()) do
  A.size(size)
  local lo, hi, best_pps = 0, 100, 0
  local loss, pps = loss_at(size, 100, "rfc2544-trial")
  if loss <= max_loss then
    lo, best_pps = 100, pps
  else
    while hi - lo > resolution do
      local mid = (lo + hi) / 2
      loss, pps = loss_at(size, mid, "rfc2544-trial")
      if loss <= max_loss then lo, best_pps = mid, pps else hi = mid end
    end
  end
  if lo > 0 then
    loss, pps = loss_at(size, lo, "rfc2544-confirm")
    if loss > max_loss then A.log("  %5d B: the confirmation at %.3f %% lost packets: report as unstable\n", size, lo) end
  end
  A.record("rfc2544", size, lo, 0, 0, best_pps)
  A.log("%5d B: zero-loss throughput %.3f %% of line rate, %.3f Mpps\n", size, lo, best_pps / 1e6)
end
if os.getenv("AVES_PG_NO_EXIT") == nil then os.exit(0) end
