//! Multi-buffer HMAC (ipsec-mb, bursts of 32) against one-at-a-time HMAC (RustCrypto
//! `hmac` + md-5/sha2, the same code family as aves's portable path), in one run.
//! `cargo bench -p dpdk-sys --bench mb_hmac`

use dpdk_sys::mb::{MbAlgorithm, MultiHmac};
use hmac::{Hmac, Mac};
use std::hint::black_box;
use std::time::Instant;

fn best_ns_per_msg(n_msgs: u64, mut f: impl FnMut()) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_nanos() as f64 / n_msgs as f64);
    }
    best
}

/// `--raw SIZE[,SIZE...]`: only the multi-buffer rate, one line per algorithm and size,
/// `raw <algorithm> <size> <Mpps>`, for `perf/run.sh` to set beside the waypoint's rate
/// in the same invocation (its HMAC input for a frame of SIZE bytes is SIZE bytes: the
/// 14-byte staged prefix and the inner datagram).
fn raw(sizes: &str) {
    let key = [7u8; 32];
    let mut mb = MultiHmac::new().expect("ipsec-mb");
    for size in sizes
        .split(',')
        .filter_map(|s| s.trim().parse::<usize>().ok())
    {
        let msgs: Vec<Vec<u8>> = (0..32).map(|i| vec![i as u8; size]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut tags = [[0u8; 16]; 32];
        for (name, alg) in [
            ("hmac-md5", MbAlgorithm::HmacMd5),
            ("hmac-sha256-128", MbAlgorithm::HmacSha256_128),
        ] {
            let k = mb.key(alg, &key).unwrap();
            // About 0.3 s per measurement whatever the size; best of 5.
            let rounds = (300_000_000 / (32 * (size as u64 + 200))).max(10);
            let ns = best_ns_per_msg(32 * rounds, || {
                for _ in 0..rounds {
                    black_box(mb.tag_burst(&k, black_box(&refs), &mut tags));
                }
            });
            println!("raw {name} {size} {:.3}", 1e3 / ns);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--raw") {
        return raw(args.get(i + 1).map_or("64,512,1464", String::as_str));
    }
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let rounds = if quick { 20 } else { 2000 };
    let key = [7u8; 32];
    let mut mb = MultiHmac::new().expect("ipsec-mb");
    println!("HMAC per message, bursts of 32 (ratio = one-at-a-time / multi-buffer)");
    for size in [64usize, 512, 1464] {
        let msgs: Vec<Vec<u8>> = (0..32).map(|i| vec![i as u8; size]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut tags = [[0u8; 16]; 32];
        for (name, alg) in [
            ("HMAC-MD5", MbAlgorithm::HmacMd5),
            ("HMAC-SHA-256/128", MbAlgorithm::HmacSha256_128),
        ] {
            let k = mb.key(alg, &key).unwrap();
            let multi = best_ns_per_msg(32 * rounds, || {
                for _ in 0..rounds {
                    black_box(mb.tag_burst(&k, black_box(&refs), &mut tags));
                }
            });
            let single = best_ns_per_msg(32 * rounds, || {
                for _ in 0..rounds {
                    for m in &refs {
                        let t = match alg {
                            MbAlgorithm::HmacMd5 => {
                                let mut h = Hmac::<md5::Md5>::new_from_slice(&key).unwrap();
                                h.update(m);
                                h.finalize().into_bytes()[0]
                            }
                            MbAlgorithm::HmacSha256_128 => {
                                let mut h = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
                                h.update(m);
                                h.finalize().into_bytes()[0]
                            }
                        };
                        black_box(t);
                    }
                }
            });
            println!(
                "{name:<17} {size:>5} B  multi-buffer {multi:>8.1} ns ({:>6.2} Mpps, {:>6.2} Gb/s)  one-at-a-time {single:>8.1} ns  {:>5.2}x",
                1e3 / multi,
                size as f64 * 8.0 / multi,
                single / multi
            );
        }
    }
}
