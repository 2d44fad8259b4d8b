//! The data-tunnel test vectors of `docs/protocol.md`, checked against the code.
//!
//! Every fenced block tagged `aves-vector` is parsed (`key: value` lines, `#` comments,
//! hex continued on indented lines). For each: encapsulating the inner datagram with the
//! given key and outer parameters must give exactly the documented tag, HMAC input and
//! outer datagram; decapsulating the documented datagram must give the inner one back.
//! So the document cannot drift from the code.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use aves_dataplane::auth::{self, Algorithm, Key, Keyring};
use aves_dataplane::buf::{PacketBuf, VecBuf};
use aves_dataplane::pipeline::tunnel::{self, Decapsulated, Outer};
use aves_dataplane::wire::ipv4;

const ETH_HDR: [u8; 14] = [2, 0, 0, 0, 0, 0xbb, 2, 0, 0, 0, 0, 0xaa, 0x08, 0x00];

fn protocol_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The `aves-vector` blocks of `doc`, each as field name → value (continuations joined).
fn vectors(doc: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut current: Option<BTreeMap<String, String>> = None;
    let mut last_key = String::new();
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == "```aves-vector" => current = Some(BTreeMap::new()),
            None => {}
            Some(v) if line.trim() == "```" => {
                out.push(std::mem::take(v));
                current = None;
            }
            Some(_) if line.trim_start().starts_with('#') || line.trim().is_empty() => {}
            Some(v) if line.starts_with([' ', '\t']) => {
                v.get_mut(&last_key)
                    .unwrap_or_else(|| panic!("continuation before any field: {line:?}"))
                    .push_str(line.trim());
            }
            Some(v) => {
                let (k, val) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("not `key: value`: {line:?}"));
                last_key = k.trim().to_string();
                assert!(
                    v.insert(last_key.clone(), val.trim().to_string()).is_none(),
                    "field {last_key} twice"
                );
            }
        }
    }
    assert!(current.is_none(), "unterminated aves-vector block");
    out
}

fn hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() & 1, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn field<'a>(v: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    v.get(name)
        .unwrap_or_else(|| panic!("vector {:?} lacks {name}", v.get("name")))
}

fn num<T: std::str::FromStr>(v: &BTreeMap<String, String>, name: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    field(v, name).parse().expect(name)
}

#[test]
fn documented_vectors_match_the_code() {
    let vs = vectors(&protocol_md());
    assert!(vs.len() >= 3, "docs/protocol.md has {} vectors", vs.len());
    let mut kinds = Vec::new();

    for v in &vs {
        let name = field(v, "name");
        let alg = Algorithm::from_name(field(v, "algorithm")).expect("algorithm");
        let key = Key::new(num(v, "key_id"), alg, &hex(field(v, "secret"))).expect("key");
        let flags: u8 = num(v, "flags");
        let outer = Outer {
            src: num::<Ipv4Addr>(v, "outer_src"),
            dst: num::<Ipv4Addr>(v, "outer_dst"),
            dst_port: num(v, "port"),
            ident: num(v, "ident"),
            flags,
        };
        let inner = hex(field(v, "inner"));
        let want = hex(field(v, "encapsulated"));
        let want_tag = hex(field(v, "tag"));
        let tag_input = hex(field(v, "tag_input"));
        kinds.push((alg, flags & 1 != 0));

        // The documented HMAC input gives the documented tag.
        assert_eq!(
            auth::tag(&key, &[&tag_input]).to_vec(),
            want_tag,
            "{name}: tag of tag_input"
        );
        // ... and is the concatenation the document describes.
        let covered = tunnel::covered_inner(&inner, flags & 1 != 0);
        let mut expect_input = Vec::new();
        expect_input.extend_from_slice(&outer.src.octets());
        expect_input.extend_from_slice(&outer.dst.octets());
        expect_input.extend_from_slice(&outer.dst_port.to_be_bytes());
        expect_input.extend_from_slice(&[0x10 | flags, key.id(), 0, 0]);
        expect_input.extend_from_slice(covered);
        assert_eq!(tag_input, expect_input, "{name}: tag_input layout");

        let inner_view = ipv4::Packet::new_checked(&inner[..]).expect("inner datagram");
        assert!(inner_view.verify_checksum(), "{name}: inner checksum");
        assert_eq!(
            tunnel::source_port(&inner_view),
            num::<u16>(v, "source_port"),
            "{name}: source port"
        );

        // Encapsulation reproduces the documented bytes.
        let frame = [&ETH_HDR[..], &inner].concat();
        let mut b = VecBuf::from_slice(&frame);
        tunnel::encapsulate(&mut b, &outer, &key).expect("encapsulate");
        assert_eq!(&b.data()[..14], &ETH_HDR, "{name}: Ethernet header kept");
        assert_eq!(
            &b.data()[14..],
            &want[..],
            "{name}: encapsulated datagram differs"
        );
        assert_eq!(&want[32..48], &want_tag[..], "{name}: tag position");
        assert_eq!(want.len(), inner.len() + tunnel::OVERHEAD);

        // Decapsulation of the documented bytes gives the inner datagram back.
        let mut b = VecBuf::from_slice(&[&ETH_HDR[..], &want].concat());
        let got = tunnel::decapsulate(&mut b, &Keyring::new(key.clone()), outer.dst_port)
            .expect("decapsulate");
        assert_eq!(
            got,
            Decapsulated {
                outer_src: outer.src,
                outer_dst: outer.dst,
                flags,
                key_id: key.id()
            },
            "{name}"
        );
        assert_eq!(b.data(), &frame[..], "{name}: inner frame");

        // And a changed tag byte is refused.
        let mut bad = [&ETH_HDR[..], &want].concat();
        bad[14 + 40] ^= 0x01;
        let mut b = VecBuf::from_slice(&bad);
        assert_eq!(
            tunnel::decapsulate(&mut b, &Keyring::new(key), outer.dst_port),
            Err(aves_dataplane::counters::DropReason::AuthBadTag),
            "{name}"
        );
    }

    for required in [
        (Algorithm::HmacMd5, false),
        (Algorithm::HmacMd5, true),
        (Algorithm::HmacSha256_128, false),
    ] {
        assert!(
            kinds.contains(&required),
            "no vector for {required:?} (algorithm, headers-only)"
        );
    }
}

#[test]
fn parser_reads_continuations_and_comments() {
    let doc =
        "text\n```aves-vector\n# note\nname: x\ninner: 0102\n  0304\n```\n```rust\nname: y\n```\n";
    let vs = vectors(doc);
    assert_eq!(vs.len(), 1);
    assert_eq!(vs[0]["name"], "x");
    assert_eq!(hex(&vs[0]["inner"]), [1, 2, 3, 4]);
}
