//! Builds the bindings to the system DPDK (22.11 LTS, found with pkg-config) and the C
//! shim that exports DPDK's static-inline fast-path functions.
//!
//! The shim and bindgen both use exactly the flags `pkg-config --cflags libdpdk` gives
//! (`-include rte_config.h`, `-march=...`), so struct layouts match the installed DPDK.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(l) => l,
        Err(e) => panic!(
            "DPDK 22.11 not found with pkg-config ({e}).\n\
             Install it: sudo apt-get install dpdk libdpdk-dev pkg-config clang libclang-dev \
             (or run scripts/install-deps.sh)"
        ),
    };

    // Compile flags other than -I (e.g. `-include rte_config.h`, `-march=corei7`).
    let cflags = pkg_config::get_variable("libdpdk", "cflags").unwrap_or_default();
    let raw = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or(cflags);
    let mut extra: Vec<String> = Vec::new();
    let mut it = raw.split_whitespace();
    while let Some(f) = it.next() {
        if f == "-include" {
            if let Some(h) = it.next() {
                extra.push("-include".into());
                extra.push(h.into());
            }
        } else if !f.starts_with("-I") {
            extra.push(f.into());
        }
    }

    let mut cc = cc::Build::new();
    cc.file("shim/shim.c")
        .include("shim")
        .warnings(false)
        .opt_level(3);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    for f in &extra {
        cc.flag(f);
    }
    cc.compile("aves_shim");

    // Multi-buffer HMAC (Intel ipsec-mb, Debian's libipsec-mb-dev; DPDK's crypto_ipsec_mb
    // driver is built on the same library).
    println!("cargo:rerun-if-changed=shim/mb.c");
    println!("cargo:rerun-if-changed=shim/mb.h");
    cc::Build::new()
        .file("shim/mb.c")
        .include("shim")
        .opt_level(3)
        .compile("aves_mb");
    println!("cargo:rustc-link-lib=IPSec_MB");

    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.extend(extra.iter().cloned());
    clang_args.push("-Ishim".into());

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .header("shim/mb.h")
        .clang_args(&clang_args)
        .allowlist_function("aves_.*")
        .allowlist_function("rte_eal_(init|cleanup|remote_launch|wait_lcore|get_lcore_state)")
        .allowlist_function("rte_(lcore_count|get_main_lcore|get_next_lcore|lcore_to_cpu_id|socket_id|lcore_is_enabled)")
        .allowlist_function("rte_get_tsc_hz|rte_strerror")
        .allowlist_function("rte_eth_(dev_configure|dev_info_get|dev_adjust_nb_rx_tx_desc|rx_queue_setup|tx_queue_setup|dev_start|dev_stop|dev_close|dev_set_mtu|promiscuous_enable|macaddr_get|link_get_nowait|stats_get|stats_reset|xstats_get|xstats_get_names|dev_count_avail|dev_get_port_by_name|dev_socket_id|dev_is_valid_port)")
        .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count|rte_mempool_in_use_count")
        .allowlist_function("rte_ring_(create|create_elem|free)")
        .allowlist_var("RTE_ETH_.*|RING_F_.*|RTE_MAX_LCORE|RTE_PKTMBUF_HEADROOM|SOCKET_ID_ANY|RTE_ETHER_.*")
        .allowlist_type("aves_mbuf_offsets")
        .opaque_type("rte_mbuf|rte_mempool|rte_ring")
        .layout_tests(false)
        .derive_default(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .generate()
        .expect("bindgen failed on shim/shim.h (is libclang-dev installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}
