//! Zero-copy packet views (smoltcp style). Filled in by the wire work.
