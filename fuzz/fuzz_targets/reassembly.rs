//! IPv4 reassembly (`pipeline::reassembly`) with sequences of fragments.
//!
//! First byte bit 0 picks the mode:
//! - **arbitrary** (0): records `[flags][dt][len lo][len hi][frame]` pushed one by one
//!   (flags bit 0: repair the IPv4 total length and header checksum; the clock advances
//!   `dt²` ms). Checks: no panic, no allocation in `push`/`expire` (buffers come from a
//!   pool), held bytes and fragments within the configured bounds, every `Complete`
//!   fragment-born datagram is a whole IPv4 datagram with a valid header checksum, and
//!   every buffer is accounted for exactly once (`ReassemblyCounters` plus what
//!   `drain` hands out equals what was pushed; nothing leaks).
//! - **differential** (1): a datagram made from the input (protocol, header options,
//!   payload length up to 65515 with the input bytes repeated) cut at input-chosen
//!   boundaries, sent in an input-chosen order with duplicates: it comes back exactly
//!   once, equal to the original (total length, flags and checksum fixed up), whenever
//!   the policy allows it (fragment count, memory, RFC 1858), and never otherwise.
#![no_main]

use aves_dataplane::buf::PacketBuf;
use aves_dataplane::pipeline::reassembly::{Reassembled, Reassembler, ReassemblyConfig};
use aves_dataplane::wire::ipv4;
use aves_fuzz::alloc::no_alloc;
use aves_fuzz::bufs::{self, CountedBuf, Origin};
use aves_fuzz::fixup::{fix_ipv4, is_ipv4_fragment, ETH};
use aves_fuzz::{be16, byte};
use libfuzzer_sys::fuzz_target;

const ETH_HDR: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];

fn config(seed: u64, max_fragments: usize, max_bytes: usize) -> ReassemblyConfig {
    ReassemblyConfig {
        max_datagrams: 4,
        max_fragments,
        max_bytes,
        timeout_ns: 5_000_000_000,
        seed,
    }
}

fn arbitrary(data: &[u8]) {
    bufs::reset();
    let cfg = config(u64::from(byte(data, 0)), 8, 8192);
    let mut r: Reassembler<CountedBuf> = Reassembler::new(cfg);
    let mut pool: Vec<CountedBuf> = Vec::with_capacity(4);
    let (mut pushed, mut complete) = (0u64, 0u64);
    let mut now = 0u64;
    let mut rest = data.get(1..).unwrap_or(&[]);
    while rest.len() >= 4 {
        let (flags, dt) = (rest[0], u64::from(rest[1]));
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let mut frame = rest[4..4 + len].to_vec();
        rest = &rest[4 + len..];
        if flags & 1 == 1 && frame.len() > ETH {
            fix_ipv4(&mut frame[ETH..]);
        }
        now += dt * dt * 1_000_000;
        while pool.len() < 2 {
            pool.push(CountedBuf::new(&[], Origin::Alloc));
        }
        let was_fragment = is_ipv4_fragment(&frame);
        let buf = CountedBuf::new(&frame, Origin::Input);
        pushed += 1;
        let res = no_alloc("push", || r.push(buf, now, || pool.pop()));
        if let Reassembled::Complete(b) = res {
            complete += 1;
            if was_fragment || b.origin() == Origin::Alloc {
                check_whole(b.data());
            }
            b.end();
        }
        assert!(r.held_bytes() <= cfg.max_bytes);
        assert!(r.held_fragments() <= cfg.max_datagrams * cfg.max_fragments);
        assert!(r.len() <= cfg.max_datagrams);
        if flags & 2 == 2 {
            no_alloc("expire", || r.expire(now));
        }
    }
    let c = r.counters().clone();
    let mut drained = 0u64;
    r.drain(|b| {
        drained += 1;
        b.end()
    });
    assert!(r.is_empty() && r.held_bytes() == 0 && r.held_fragments() == 0);
    for b in pool.drain(..) {
        b.discard();
    }
    // Complete non-fragments are `passed`; a completed datagram is one of its fragments'
    // buffers (counted in fragments_reassembled) or an allocated one.
    assert_eq!(
        c.passed + c.fragments_reassembled + c.dropped_total() + drained,
        pushed,
        "pushed buffers not accounted for: {c:?}, {drained} drained"
    );
    assert_eq!(c.passed + c.completed, complete);
    let t = bufs::tally();
    assert_eq!(t.live(), 0, "buffers leaked: {t:?}");
}

/// A reassembled frame: Ethernet + a whole IPv4 datagram with a valid header checksum.
fn check_whole(frame: &[u8]) {
    let ip = ipv4::Packet::new_checked(&frame[ETH..]).expect("reassembled: IPv4");
    assert!(
        !ip.is_fragment(),
        "reassembled datagram is still a fragment"
    );
    assert!(
        ip.verify_checksum(),
        "reassembled datagram: bad header checksum"
    );
    assert_eq!(usize::from(ip.total_len()), frame.len() - ETH);
}

fn differential(data: &[u8]) {
    bufs::reset();
    let proto = [17u8, 6, 1, 47][usize::from(byte(data, 1) & 3)];
    let hlen = 20 + 4 * usize::from(byte(data, 1) >> 2 & 7); // 0..28 option bytes
    let pattern = data.get(8..).filter(|p| !p.is_empty()).unwrap_or(&[0x5a]);
    let want_len = usize::from(be16(data, 2)) % (65535 - hlen + 1);
    let payload: Vec<u8> = pattern.iter().copied().cycle().take(want_len).collect();
    if payload.is_empty() {
        return;
    }
    // The original datagram (DF clear; options: NOPs then an End).
    let mut ip = vec![0u8; hlen];
    ip[0] = 0x40 | (hlen / 4) as u8;
    ip[4..6].copy_from_slice(&be16(data, 4).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[198, 51, 100, 10]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
    for b in ip.iter_mut().skip(20) {
        *b = 1;
    }
    // Cut points: sizes are multiples of 8, from a step the input picks.
    // 8..1472, raised so that there are at most about 96 fragments.
    let unit = (8 * (1 + usize::from(byte(data, 6)) % 184)).max(payload.len().div_ceil(96 * 8) * 8);
    let mut pieces = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + unit).min(payload.len());
        pieces.push((off, end));
        off = end;
    }
    let max_fragments = 64;
    let max_bytes = 1 << 20;
    let mut frames: Vec<Vec<u8>> = pieces
        .iter()
        .map(|&(o, e)| {
            let mut f = ETH_HDR.to_vec();
            let h = if o == 0 { hlen } else { 20 };
            let mut hdr = ip[..h].to_vec();
            hdr[0] = 0x40 | (h / 4) as u8;
            let more = e < payload.len();
            let fo = ((o / 8) as u16) | if more { 0x2000 } else { 0 };
            hdr[6..8].copy_from_slice(&fo.to_be_bytes());
            f.extend_from_slice(&hdr);
            f.extend_from_slice(&payload[o..e]);
            fix_ipv4(&mut f[ETH..]);
            f
        })
        .collect();
    let fragmented = frames.len() > 1;
    // Order: rotate and maybe reverse; maybe duplicate one fragment.
    let n = frames.len();
    frames.rotate_left(usize::from(byte(data, 7)) % n);
    if byte(data, 5) & 1 == 1 {
        frames.reverse();
    }
    let dup = byte(data, 5) & 2 == 2 && n > 1;
    if dup {
        let f = frames[0].clone();
        frames.insert(1, f);
    }
    let tiny = (proto == 6 && pieces.iter().any(|&(o, _)| o == 8))
        || (pieces[0].1
            < match proto {
                6 => 20,
                17 | 1 => 8,
                _ => 0,
            }
            && fragmented);
    let frame_bytes: usize = frames.iter().map(Vec::len).sum();
    let allowed = !tiny && pieces.len() <= max_fragments && frame_bytes <= max_bytes;

    let mut r: Reassembler<CountedBuf> =
        Reassembler::new(config(u64::from(byte(data, 0)), max_fragments, max_bytes));
    let mut got = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let b = CountedBuf::new(f, Origin::Input);
        // Buffers big enough for any datagram (the mbuf-sized case is the other mode's).
        let alloc = || Some(CountedBuf::with_room(&[], 128, 65536 + 256));
        match r.push(b, i as u64, alloc) {
            Reassembled::Complete(b) => {
                got.push(b.data().to_vec());
                b.end();
            }
            Reassembled::Held | Reassembled::Dropped(_) => {}
        }
    }
    r.drain(|b| b.end());
    assert_eq!(bufs::tally().live(), 0, "buffers leaked");
    if !allowed {
        assert!(
            got.is_empty() || !fragmented,
            "reassembled against the policy"
        );
        return;
    }
    assert_eq!(got.len(), 1, "expected exactly one datagram back");
    let mut want = ETH_HDR.to_vec();
    want.extend_from_slice(&ip);
    want.extend_from_slice(&payload);
    fix_ipv4(&mut want[ETH..]);
    assert_eq!(got[0].len(), want.len(), "reassembled length");
    assert!(got[0] == want, "reassembled bytes differ from the original");
}

fuzz_target!(|data: &[u8]| {
    if byte(data, 0) & 1 == 0 {
        arbitrary(data);
    } else {
        differential(data);
    }
});
