//! dpdk-sys: bindings to the system DPDK 22.11 and thin safe wrappers. (Skeleton.)
