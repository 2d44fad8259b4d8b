//! The AVES data tunnel (`pipeline::tunnel`).
//!
//! 1. `decapsulate` of arbitrary frames with fixed keyrings (the keys of the
//!    `docs/protocol.md` test vectors) and both vector ports: never panics; on error the
//!    buffer is exactly as it was; on success what is left is the Ethernet header plus a
//!    checked inner IPv4 datagram that was in the frame.
//! 2. `encapsulate` → `decapsulate` of the input read as an inner datagram (repaired so
//!    it is IPv4 when the control bytes ask): encapsulation fails only with the buffer
//!    unchanged; when it succeeds, decapsulation with the matching keyring gives back
//!    exactly the Ethernet header and inner datagram; flipping any authenticated bit
//!    (outer addresses, UDP port, AVES header, tag, covered inner bytes) makes it fail.
//!
//! Input: `[control 6 bytes][bytes]`: the bytes are the frame of (1) and the inner
//! datagram of (2) (after the Ethernet header the target puts in front).
#![no_main]

use aves_dataplane::auth::{Algorithm, Key, Keyring};
use aves_dataplane::buf::{PacketBuf, VecBuf};
use aves_dataplane::counters::DropReason;
use aves_dataplane::pipeline::tunnel::{self, covered_inner, Outer, AVES_UDP_PORT};
use aves_dataplane::wire::{aves, ipv4};
use aves_fuzz::fixup::{fix_ipv4, fix_l4, ETH};
use aves_fuzz::{be16, byte};
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

const ETH_HDR: [u8; 14] = [2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x08, 0x00];
const PORTS: [u16; 2] = [AVES_UDP_PORT, 5000];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The four vector keys (ids 1, 2, 3, 200) and two keyrings holding two each.
struct Keys {
    keys: [Key; 4],
    rings: [Keyring; 2],
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let k = |id, alg, s: &str| Key::new(id, alg, &hex(s)).expect("vector key");
        let keys = [
            k(1, Algorithm::HmacMd5, "000102030405060708090a0b0c0d0e0f"),
            k(
                2,
                Algorithm::HmacMd5,
                "617665732074756e6e656c20736563726574202332",
            ),
            k(
                3,
                Algorithm::HmacSha256_128,
                "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
            ),
            k(200, Algorithm::HmacSha256_128, &"a5".repeat(64)),
        ];
        let mut a = Keyring::new(keys[0].clone());
        a.rotate(keys[1].clone()).expect("rotate");
        let mut b = Keyring::new(keys[2].clone());
        b.rotate(keys[3].clone()).expect("rotate");
        Keys {
            keys,
            rings: [a, b],
        }
    })
}

/// Property 1.
fn decap_any(frame: &[u8]) {
    for ring in &keys().rings {
        for port in PORTS {
            let mut b = VecBuf::from_slice(frame);
            match tunnel::decapsulate(&mut b, ring, port) {
                Err(_) => assert_eq!(b.data(), frame, "a failed decapsulate changed the frame"),
                Ok(d) => {
                    let out = b.data();
                    assert_eq!(&out[..ETH], &frame[..ETH], "Ethernet header changed");
                    let ip = ipv4::Packet::new_checked(&out[ETH..]).expect("inner checks");
                    assert!(ip.verify_checksum());
                    assert_eq!(usize::from(ip.total_len()), out.len() - ETH, "padding kept");
                    assert!(ring.get(d.key_id).is_some());
                    let outer = ipv4::Packet::new_checked(&frame[ETH..]).expect("outer");
                    assert_eq!((d.outer_src, d.outer_dst), (outer.src(), outer.dst()));
                    // The inner datagram was in the frame (ECN and checksum may change).
                    let at = ETH + outer.header_len() + 8 + aves::HEADER_LEN;
                    let was = &frame[at..at + out.len() - ETH];
                    for (i, (x, y)) in was.iter().zip(&out[ETH..]).enumerate() {
                        assert!(x == y || i == 1 || i == 10 || i == 11, "inner byte {i}");
                    }
                }
            }
        }
    }
}

/// Property 2.
fn round_trip(ctl: &[u8], body: &[u8]) {
    let mut frame = ETH_HDR.to_vec();
    frame.extend_from_slice(body);
    if byte(ctl, 0) & 1 == 1 {
        fix_ipv4(&mut frame[ETH..]);
        if byte(ctl, 0) & 2 == 2 {
            fix_l4(&mut frame[ETH..]);
        }
    }
    let key_ix = usize::from(byte(ctl, 1) & 3);
    let key = &keys().keys[key_ix];
    let ring = &keys().rings[key_ix / 2];
    let port = PORTS[usize::from(byte(ctl, 1) >> 2 & 1)];
    let outer = Outer {
        src: Ipv4Addr::new(203, 0, 113, byte(ctl, 2)),
        dst: Ipv4Addr::new(192, 0, 2, 1),
        dst_port: port,
        ident: be16(ctl, 3),
        // Unknown bits too: they are not written.
        flags: byte(ctl, 1) >> 3,
    };
    let headroom = if byte(ctl, 0) & 4 == 4 {
        usize::from(byte(ctl, 2)) % 64
    } else {
        VecBuf::HEADROOM
    };
    let mut b = VecBuf::with_room(&frame, headroom, VecBuf::CAPACITY);
    if tunnel::encapsulate(&mut b, &outer, key).is_err() {
        assert_eq!(
            b.data(),
            &frame[..],
            "a failed encapsulate changed the frame"
        );
        return;
    }
    let enc = b.data().to_vec();
    let inner = ipv4::Packet::new_checked(&frame[ETH..]).expect("encapsulated: inner was IPv4");
    let inner_len = usize::from(inner.total_len());
    assert_eq!(enc.len(), ETH + tunnel::OVERHEAD + inner_len);
    let o = ipv4::Packet::new_checked(&enc[ETH..]).expect("outer checks");
    assert!(o.verify_checksum());
    assert_eq!(o.dont_frag(), inner.dont_frag());
    assert_eq!(o.dscp_ecn(), inner.dscp_ecn());
    let mut d = VecBuf::from_slice(&enc);
    let res = tunnel::decapsulate(&mut d, ring, port);
    // encapsulate takes the inner checksum on trust (its caller translated the
    // datagram); decapsulate checks it after the tag.
    if !inner.verify_checksum() {
        assert_eq!(res, Err(DropReason::TunnelInnerMalformed));
        return;
    }
    let got = res.expect("own encapsulation decapsulates");
    assert_eq!(got.key_id, key.id());
    assert_eq!(got.flags, outer.flags & aves::FLAGS_KNOWN);
    assert_eq!((got.outer_src, got.outer_dst), (outer.src, outer.dst));
    assert_eq!(&d.data()[..ETH], &ETH_HDR[..]);
    assert_eq!(
        &d.data()[ETH..],
        &frame[ETH..ETH + inner_len],
        "inner changed"
    );

    // Tampering with an authenticated bit is detected.
    let at = ETH + usize::from(be16(ctl, 4)) % (enc.len() - ETH);
    let bit = 1u8 << (byte(ctl, 5) & 7);
    let ip_at = at - ETH;
    let aves_at = ETH + 20 + 8;
    let covered = covered_inner(&enc[aves_at + aves::HEADER_LEN..], outer.flags & 1 == 1).len();
    let authenticated = (12..20).contains(&ip_at)
        || (22..24).contains(&ip_at)
        || (aves_at..aves_at + aves::HEADER_LEN + covered).contains(&at);
    let mut t = enc.clone();
    t[at] ^= bit;
    let mut tb = VecBuf::from_slice(&t);
    match tunnel::decapsulate(&mut tb, ring, port) {
        Ok(_) => assert!(
            !authenticated,
            "tampered byte {at} (bit {bit:#x}) not detected"
        ),
        Err(_) => assert_eq!(tb.data(), &t[..], "a failed decapsulate changed the frame"),
    }
}

fuzz_target!(|data: &[u8]| {
    let (ctl, body) = data.split_at(data.len().min(6));
    decap_any(body);
    round_trip(ctl, body);
});
