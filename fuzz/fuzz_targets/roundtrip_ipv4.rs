//! IPv4: parse → emit → parse gives the same `Ipv4Repr` and payload; emit → parse of a
//! `Ipv4Repr` built from the input gives it back; the incremental header updates
//! (`decrement_ttl`, `set_src_incremental`, `set_dst_incremental`) and the NAT rewrites
//! (`nat::rewrite_addr`, `nat::rewrite_port`) keep valid IPv4 and transport checksums
//! valid and change only the field they rewrite.
//!
//! Input: `[selector 4 bytes][datagram]`. The selector gives the new address/port for
//! the rewrites and which end; the datagram is used as is and, repaired
//! (`aves_fuzz::fixup`), for the checksum properties.
#![no_main]

use aves_dataplane::pipeline::nat::{self, End};
use aves_dataplane::wire::ipv4::{self, Ipv4Repr, MIN_HEADER_LEN};
use aves_fuzz::fixup::{fix_ipv4, fix_l4, l4_ok};
use aves_fuzz::{be16, be32, byte};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

/// Parse → emit → parse.
fn reparse(d: &[u8]) {
    let Ok(p) = ipv4::Packet::new_checked(d) else {
        return;
    };
    let Ok(r) = Ipv4Repr::parse(&p) else {
        return;
    };
    let mut out = vec![0u8; r.buffer_len() + usize::from(r.payload_len)];
    r.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    out[MIN_HEADER_LEN..].copy_from_slice(p.payload());
    let q = ipv4::Packet::new_checked(&out[..]).expect("emitted header checks");
    assert_eq!(
        Ipv4Repr::parse(&q),
        Ok(r),
        "parse(emit(parse(x))) != parse(x)"
    );
    assert_eq!(q.payload(), p.payload());
    assert!(!q.more_frags() && q.frag_offset() == 0 && q.options().is_empty());
}

/// A `Ipv4Repr` from raw bytes → emit → parse.
fn emit_parse(d: &[u8]) {
    let r = Ipv4Repr {
        src: Ipv4Addr::from(be32(d, 0)),
        dst: Ipv4Addr::from(be32(d, 4)),
        protocol: byte(d, 8),
        payload_len: be16(d, 9) % (65535 - MIN_HEADER_LEN as u16 + 1),
        ttl: byte(d, 11),
        dscp_ecn: byte(d, 12),
        ident: be16(d, 13),
        dont_frag: byte(d, 15) & 1 == 1,
    };
    let mut out = vec![0u8; MIN_HEADER_LEN + usize::from(r.payload_len)];
    r.emit(&mut ipv4::Packet::new_unchecked(&mut out[..]));
    let q = ipv4::Packet::new_checked(&out[..]).expect("emitted header checks");
    assert_eq!(Ipv4Repr::parse(&q), Ok(r), "parse(emit(r)) != r");
}

/// Incremental header updates keep the checksum valid.
fn incremental(d: &[u8], sel: &[u8]) {
    let mut v = d.to_vec();
    if !fix_ipv4(&mut v) {
        return;
    }
    let mut p = ipv4::Packet::new_unchecked(&mut v[..]);
    assert!(p.verify_checksum());
    let ttl = p.ttl();
    p.decrement_ttl();
    assert_eq!(p.ttl(), ttl.saturating_sub(1));
    assert!(p.verify_checksum(), "decrement_ttl broke the checksum");
    let a = Ipv4Addr::from(be32(sel, 0));
    p.set_src_incremental(a);
    assert_eq!(p.src(), a);
    assert!(
        p.verify_checksum(),
        "set_src_incremental broke the checksum"
    );
    let b = Ipv4Addr::from(be32(sel, 0).rotate_left(8));
    p.set_dst_incremental(b);
    assert_eq!(p.dst(), b);
    assert!(
        p.verify_checksum(),
        "set_dst_incremental broke the checksum"
    );
}

/// NAT rewrites keep valid checksums valid (also of a truncated quote: no panic).
fn rewrites(d: &[u8], sel: &[u8]) {
    let end = if byte(sel, 0) & 1 == 1 {
        End::Source
    } else {
        End::Destination
    };
    let to = Ipv4Addr::from(be32(sel, 0));
    let port = be16(sel, 2);
    // Arbitrary bytes: no panic, and a refusal leaves them unchanged.
    let mut raw = d.to_vec();
    if !nat::rewrite_addr(&mut raw, end, to) {
        assert_eq!(raw, d, "a refused rewrite_addr changed the bytes");
    }
    let before = raw.clone();
    if !nat::rewrite_port(&mut raw, end, port) {
        assert_eq!(raw, before, "a refused rewrite_port changed the bytes");
    }
    // A repaired datagram: checksums stay valid.
    let mut v = d.to_vec();
    if !fix_ipv4(&mut v) {
        return;
    }
    fix_l4(&mut v);
    let was_ok = l4_ok(&v);
    let orig = v.clone();
    assert!(nat::rewrite_addr(&mut v, end, to));
    let p = ipv4::Packet::new_checked(&v[..]).expect("still IPv4");
    assert!(
        p.verify_checksum(),
        "rewrite_addr broke the header checksum"
    );
    assert_eq!(if end == End::Source { p.src() } else { p.dst() }, to);
    if was_ok {
        assert!(l4_ok(&v), "rewrite_addr broke the transport checksum");
    }
    let changed = nat::rewrite_port(&mut v, end, port);
    let p = ipv4::Packet::new_checked(&v[..]).expect("still IPv4");
    assert!(
        p.verify_checksum(),
        "rewrite_port touched the header checksum"
    );
    if was_ok {
        assert!(l4_ok(&v), "rewrite_port broke the transport checksum");
    }
    if !changed {
        return;
    }
    // Only the address, the port and checksums differ from the original.
    let hlen = p.header_len();
    let (a_at, p_at) = match end {
        End::Source => (12, 0),
        End::Destination => (16, 2),
    };
    for (i, (x, y)) in orig.iter().zip(&v).enumerate() {
        let in_addr = (a_at..a_at + 4).contains(&i) || (10..12).contains(&i);
        let l4 = i.checked_sub(hlen);
        let in_l4 = l4.is_some_and(|j| {
            (p_at..p_at + 2).contains(&j)
                || (4..6).contains(&j)
                || (2..4).contains(&j)
                || (6..8).contains(&j)
                || (16..18).contains(&j)
        });
        assert!(x == y || in_addr || in_l4, "byte {i} changed by a rewrite");
    }
}

fuzz_target!(|data: &[u8]| {
    let (sel, d) = data.split_at(data.len().min(4));
    reparse(d);
    emit_parse(d);
    incremental(d, sel);
    rewrites(d, sel);
});
