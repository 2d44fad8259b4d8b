//! The AVES control protocol (`aves::proto`: SETUP, ACCEPT, REJECT, REGISTER).
//!
//! 1. `parse` of arbitrary bytes never panics; what it accepts re-emits exactly:
//!    `seal` of the parsed message under the parsed key id and sequence gives back the
//!    same header and body bytes (parse → emit is the identity on the signed part).
//! 2. `Verifier::open` of arbitrary bytes never panics and accepts nothing (the fuzzer
//!    cannot know the key): every refusal is one of the documented reasons.
//! 3. What parses, sealed with the verifier's key within its clock window, opens to the
//!    same header and message; the same bytes again are a replay; flipping any one
//!    byte (header, body or tag) or opening it as from another sender is refused.
//!
//! Input: `[control byte][bytes]`: bit 0 picks the key (HMAC-MD5 id 1 or
//! HMAC-SHA-256/128 id 2), bits 1-7 the byte to flip in (3).
#![no_main]

use aves::proto::{self, ProtoError, Verifier, VerifierConfig};
use aves_dataplane::auth::{Algorithm, Key};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

const NOW_US: u64 = 1_800_000_000_000_000;
const START_US: u64 = NOW_US - 1_000_000;

fn keys() -> [Key; 2] {
    [
        Key::new(1, Algorithm::HmacMd5, b"control secret one!!").expect("key"),
        Key::new(2, Algorithm::HmacSha256_128, b"control secret two, longer").expect("key"),
    ]
}

fn sender() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, bytes)) = data.split_first() else {
        return;
    };
    let keys = keys();

    // 2: arbitrary bytes are never authentic.
    let mut v = Verifier::new(keys.to_vec(), VerifierConfig::default(), START_US);
    match v.open(bytes, sender(), NOW_US) {
        Ok(m) => panic!("forged message accepted: {m:?}"),
        Err(e) => assert!(ProtoError::ALL.contains(&e), "undocumented reason {e:?}"),
    }

    // 1: parse → emit.
    let Ok((header, msg)) = proto::parse(bytes) else {
        return;
    };
    assert_eq!(msg.msg_type(), header.msg_type);
    assert_eq!(proto::wire_len(msg.msg_type()), Some(bytes.len()));
    let any_key = Key::new(header.key_id, Algorithm::HmacMd5, &[9; 16]).expect("key");
    let emitted = proto::seal(&msg, &any_key, header.sequence, sender());
    let signed = bytes.len() - aves_dataplane::auth::TAG_LEN;
    assert_eq!(
        &emitted[..signed],
        &bytes[..signed],
        "parse → emit changed the message"
    );

    // 3: sealed with the verifier's key, it opens once, and only as it was sent.
    let key = &keys[usize::from(ctl & 1)];
    let sealed = proto::seal(&msg, key, NOW_US, sender());
    let mut v = Verifier::new(keys.to_vec(), VerifierConfig::default(), START_US);
    let (h, m) = v
        .open(&sealed, sender(), NOW_US)
        .expect("an authentic message opens");
    assert_eq!((h.key_id, h.sequence, m), (key.id(), NOW_US, msg));
    assert_eq!(
        v.open(&sealed, sender(), NOW_US),
        Err(ProtoError::Replay),
        "the same bytes twice"
    );
    let mut v = Verifier::new(keys.to_vec(), VerifierConfig::default(), START_US);
    let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 54));
    assert!(v.open(&sealed, other, NOW_US).is_err(), "another sender");
    let mut flipped = sealed.clone();
    let at = usize::from(ctl >> 1) % flipped.len();
    flipped[at] ^= 0x01;
    assert!(
        v.open(&flipped, sender(), NOW_US).is_err(),
        "byte {at} flipped and still accepted"
    );
});
