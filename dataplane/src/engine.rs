//! The DPDK lcore loop. (Skeleton.)
