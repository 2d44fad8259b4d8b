//! Tunnel authentication: HMAC (RFC 2104) with per-key precomputed states, truncated to
//! 16-byte tags, and the keyring a waypoint or gateway signs and verifies with.
//!
//! The seed (§3.2, §5.2) authenticates every encapsulated packet with a keyed MD5; here
//! the algorithm belongs to the key ([`Algorithm`]): HMAC-MD5 (RFC 2104, tested with
//! RFC 2202's vectors) or HMAC-SHA-256 truncated to 128 bits (RFC 4231 §4, tested with
//! its vectors). Both tags are 16 bytes, so the wire format does not depend on the
//! algorithm.
//!
//! Invariants:
//! - A [`Key`] holds the hash states after absorbing `K ⊕ ipad` and `K ⊕ opad`
//!   (RFC 2104 §2, §4 "implementation note"), computed once in [`Key::new`]. Signing a
//!   packet clones those states (a copy of a few dozen bytes, no heap) and hashes the
//!   message: no key processing and no allocation per packet.
//! - [`verify_tag`] compares tags in time that depends only on their length, never on
//!   where they differ.
//! - Secret bytes never appear in `Debug` output; a [`Key`] does not keep the secret
//!   itself, only the derived states.
//! - A [`Keyring`] holds at most two keys with distinct ids: `current` signs, `previous`
//!   is still accepted so a key rollover loses no packets in flight.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};

/// Length of a tag on the wire: both algorithms are truncated (or are) 128 bits.
pub const TAG_LEN: usize = 16;

/// Shortest secret [`Key::new`] accepts. RFC 2104 §3 discourages keys shorter than the
/// hash output; 16 bytes is MD5's output and the tag length.
pub const MIN_SECRET_LEN: usize = 16;

/// Longest secret [`Key::new`] accepts: one hash block (64 bytes for MD5 and SHA-256).
/// Longer keys would be hashed first (RFC 2104 §2), which adds nothing to their
/// strength, so they are refused to keep configuration unambiguous.
pub const MAX_SECRET_LEN: usize = 64;

/// Hash block length of both algorithms (B in RFC 2104 §2).
const BLOCK_LEN: usize = 64;

/// The MAC algorithm of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-MD5 (RFC 2104), the full 16-byte output. The seed's choice (§5.2).
    HmacMd5,
    /// HMAC-SHA-256 truncated to its first 16 bytes (RFC 4231 §4, RFC 2104 §5).
    HmacSha256_128,
    /// No authentication: the tag is 16 zero bytes. Only in builds with the
    /// `bench-null-auth` feature, to measure translation and encapsulation without
    /// hashing (perf/run.sh; decision 0011). Never in a release that faces a network.
    #[cfg(feature = "bench-null-auth")]
    Null,
}

impl Algorithm {
    /// The configuration name: `hmac-md5` or `hmac-sha256-128`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::HmacMd5 => "hmac-md5",
            Algorithm::HmacSha256_128 => "hmac-sha256-128",
            #[cfg(feature = "bench-null-auth")]
            Algorithm::Null => "null",
        }
    }

    /// Parses a configuration name (see [`Algorithm::name`]).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "hmac-md5" => Some(Algorithm::HmacMd5),
            "hmac-sha256-128" => Some(Algorithm::HmacSha256_128),
            #[cfg(feature = "bench-null-auth")]
            "null" => Some(Algorithm::Null),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key could not be made or added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The secret is shorter than [`MIN_SECRET_LEN`] bytes.
    TooShort {
        /// Length given.
        len: usize,
    },
    /// The secret is longer than [`MAX_SECRET_LEN`] bytes.
    TooLong {
        /// Length given.
        len: usize,
    },
    /// The new key has the id of the key that signs now: receivers could not tell the
    /// two apart during the rollover.
    DuplicateId(u8),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::TooShort { len } => write!(
                f,
                "tunnel secret is {len} bytes; at least {MIN_SECRET_LEN} are required"
            ),
            KeyError::TooLong { len } => write!(
                f,
                "tunnel secret is {len} bytes; at most {MAX_SECRET_LEN} are allowed"
            ),
            KeyError::DuplicateId(id) => write!(
                f,
                "key id {id} is the current signing key's; give the new key another id"
            ),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a tag was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No key with the packet's key id in the keyring.
    UnknownKey,
    /// The tag does not match the packet.
    BadTag,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::UnknownKey => "unknown key id",
            AuthError::BadTag => "bad authentication tag",
        })
    }
}

impl std::error::Error for AuthError {}

/// The precomputed inner and outer hash states of one HMAC key (RFC 2104 §4).
#[derive(Clone)]
enum Hmac {
    Md5 {
        inner: Md5,
        outer: Md5,
    },
    Sha256 {
        inner: Sha256,
        outer: Sha256,
    },
    #[cfg(feature = "bench-null-auth")]
    Null,
}

impl Hmac {
    /// States for `key` of any length: longer than a block it is hashed first, shorter
    /// it is zero-padded (RFC 2104 §2). Length policy is [`Key::new`]'s.
    fn new(algorithm: Algorithm, key: &[u8]) -> Hmac {
        match algorithm {
            Algorithm::HmacMd5 => {
                let (inner, outer) = states::<Md5>(key);
                Hmac::Md5 { inner, outer }
            }
            Algorithm::HmacSha256_128 => {
                let (inner, outer) = states::<Sha256>(key);
                Hmac::Sha256 { inner, outer }
            }
            #[cfg(feature = "bench-null-auth")]
            Algorithm::Null => Hmac::Null,
        }
    }

    /// The tag of the concatenation of `parts`.
    fn tag(&self, parts: &[&[u8]]) -> [u8; TAG_LEN] {
        match self {
            Hmac::Md5 { inner, outer } => finish(inner, outer, parts),
            Hmac::Sha256 { inner, outer } => finish(inner, outer, parts),
            #[cfg(feature = "bench-null-auth")]
            Hmac::Null => [0; TAG_LEN],
        }
    }
}

/// `H(K ⊕ ipad)` and `H(K ⊕ opad)` after one block each (RFC 2104 §2 steps 1-2, 5).
fn states<D: Digest + Clone>(key: &[u8]) -> (D, D) {
    let mut block = [0u8; BLOCK_LEN];
    if key.len() > BLOCK_LEN {
        let digest = D::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut pad = [0u8; BLOCK_LEN];
    for (p, k) in pad.iter_mut().zip(&block) {
        *p = k ^ 0x36;
    }
    let inner = D::new_with_prefix(pad);
    for (p, k) in pad.iter_mut().zip(&block) {
        *p = k ^ 0x5c;
    }
    let outer = D::new_with_prefix(pad);
    (inner, outer)
}

/// `H(K ⊕ opad, H(K ⊕ ipad, text))` from the precomputed states, first 16 bytes.
fn finish<D: Digest + Clone>(inner: &D, outer: &D, parts: &[&[u8]]) -> [u8; TAG_LEN] {
    let mut h = inner.clone();
    for p in parts {
        Digest::update(&mut h, p);
    }
    let inner_digest = h.finalize();
    let mut o = outer.clone();
    Digest::update(&mut o, &inner_digest);
    let full = o.finalize();
    let mut tag = [0u8; TAG_LEN];
    // Both digests are at least 16 bytes (MD5: 16, SHA-256: 32).
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

/// A tunnel key: its id on the wire, its algorithm and its precomputed HMAC states.
#[derive(Clone)]
pub struct Key {
    id: u8,
    algorithm: Algorithm,
    hmac: Hmac,
    /// The secret, for engines that precompute their own states (multi-buffer HMAC).
    secret: [u8; MAX_SECRET_LEN],
    secret_len: usize,
}

impl Key {
    /// A key from `secret` ([`MIN_SECRET_LEN`]..=[`MAX_SECRET_LEN`] bytes). The HMAC
    /// states are computed here, once; the secret is not kept.
    pub fn new(id: u8, algorithm: Algorithm, secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::TooShort { len: secret.len() });
        }
        if secret.len() > MAX_SECRET_LEN {
            return Err(KeyError::TooLong { len: secret.len() });
        }
        let mut copy = [0u8; MAX_SECRET_LEN];
        copy[..secret.len()].copy_from_slice(secret);
        Ok(Key {
            id,
            algorithm,
            hmac: Hmac::new(algorithm, secret),
            secret: copy,
            secret_len: secret.len(),
        })
    }

    /// The secret, for an engine that precomputes its own HMAC states (a multi-buffer
    /// [`BurstMac`]). As sensitive as the key itself: never log it.
    pub fn secret(&self) -> &[u8] {
        &self.secret[..self.secret_len.min(MAX_SECRET_LEN)]
    }

    /// The key id carried in the AVES header.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash states are as good as the secret: never print them.
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Tags many messages with one key at once. The engine implements it with a
/// multi-buffer library (decision 0009); [`PortableMac`] hashes one message at a time.
pub trait BurstMac: Send {
    /// Writes the tag of `msgs[i]` under `key` into `tags[i]` for every i. False if it
    /// could not (the caller then uses [`tag`] for each message).
    fn tag_burst(&mut self, key: &Key, msgs: &[&[u8]], tags: &mut [[u8; TAG_LEN]]) -> bool;
}

/// One message at a time with this module's HMAC: the portable engine and the reference.
#[derive(Debug, Default, Clone, Copy)]
pub struct PortableMac;

impl BurstMac for PortableMac {
    fn tag_burst(&mut self, key: &Key, msgs: &[&[u8]], tags: &mut [[u8; TAG_LEN]]) -> bool {
        for (m, t) in msgs.iter().zip(tags.iter_mut()) {
            *t = tag(key, &[m]);
        }
        msgs.len() <= tags.len()
    }
}

/// The tag of the concatenation of `parts` under `key`: HMAC truncated to 16 bytes.
/// Allocates nothing.
pub fn tag(key: &Key, parts: &[&[u8]]) -> [u8; TAG_LEN] {
    key.hmac.tag(parts)
}

/// Checks `received` against the tag of `parts` under `key`, in constant time.
/// [`AuthError::BadTag`] when they differ (or `received` is not 16 bytes long).
pub fn verify_tag(key: &Key, parts: &[&[u8]], received: &[u8]) -> Result<(), AuthError> {
    let expected = tag(key, parts);
    if constant_time_eq(&expected, received) {
        Ok(())
    } else {
        Err(AuthError::BadTag)
    }
}

/// True when `a == b`. The time taken depends on the lengths only: every byte pair is
/// compared, and the accumulator goes through `black_box` so the compiler cannot turn
/// the loop into an early exit (which would leak the first differing position).
/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff = std::hint::black_box(diff | (x ^ y));
    }
    diff == 0
}

/// The keys of one tunnel peer set: `current` signs; `current` and `previous` verify.
///
/// Rollover: every node adds the new key with [`Keyring::rotate`] (the old one becomes
/// `previous` and is still accepted), then, once all senders sign with the new key,
/// [`Keyring::retire_previous`].
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    current: Option<Key>,
    previous: Option<Key>,
}

impl Keyring {
    /// A keyring with one key, which signs and verifies.
    pub fn new(current: Key) -> Keyring {
        Keyring {
            current: Some(current),
            previous: None,
        }
    }

    /// Makes `next` the signing key; the current one becomes `previous` (and the old
    /// `previous`, if any, is dropped). [`KeyError::DuplicateId`] when `next` has the
    /// current key's id; nothing changes then.
    pub fn rotate(&mut self, next: Key) -> Result<(), KeyError> {
        if let Some(cur) = &self.current {
            if cur.id == next.id {
                return Err(KeyError::DuplicateId(next.id));
            }
        }
        self.previous = self.current.replace(next);
        Ok(())
    }

    /// Stops accepting the previous key; returns it.
    pub fn retire_previous(&mut self) -> Option<Key> {
        self.previous.take()
    }

    /// The key to sign with, if any.
    pub fn sign_key(&self) -> Option<&Key> {
        self.current.as_ref()
    }

    /// The previous key, still accepted, if any.
    pub fn previous(&self) -> Option<&Key> {
        self.previous.as_ref()
    }

    /// The key with id `id`, current or previous.
    pub fn get(&self, id: u8) -> Option<&Key> {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
    }

    /// Verifies `received` over `parts` with the key `id`: [`AuthError::UnknownKey`]
    /// when the keyring has no such key, [`AuthError::BadTag`] when the tag differs.
    pub fn verify(&self, id: u8, parts: &[&[u8]], received: &[u8]) -> Result<&Key, AuthError> {
        let key = self.get(id).ok_or(AuthError::UnknownKey)?;
        verify_tag(key, parts, received)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 2202 §2: all seven HMAC-MD5 test cases (key, data, digest).
    fn rfc2202() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
        vec![
            (
                vec![0x0b; 16],
                b"Hi There".to_vec(),
                "9294727a3638bb1c13f48ef8158bfc9d",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "750c783e6ab0b503eaa86e310a5db738",
            ),
            (
                vec![0xaa; 16],
                vec![0xdd; 50],
                "56be34521d144c88dbb8c733f0e8b3f6",
            ),
            (
                (1..=25).collect(),
                vec![0xcd; 50],
                "697eaf0aca3a3aea3a75164746ffaa79",
            ),
            (
                vec![0x0c; 16],
                b"Test With Truncation".to_vec(),
                "56461ef2342edc00f9bab995690efd4c",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
            ),
            (
                vec![0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data"
                    .to_vec(),
                "6f630fad67cda0ee1fb1f562db3aa53e",
            ),
        ]
    }

    /// RFC 4231 §4.2-4.8: HMAC-SHA-256 outputs (case 5 is given truncated to 128 bits
    /// there); we compare the first 16 bytes.
    fn rfc4231() -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
        vec![
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                (1..=25).collect(),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0x0c; 20],
                b"Test With Truncation".to_vec(),
                "a3b6167473100ee06e0c796c2955552b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the \
                  HMAC algorithm."
                    .to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ]
    }

    #[test]
    fn rfc2202_hmac_md5_vectors() {
        let cases = rfc2202();
        assert_eq!(cases.len(), 7);
        for (i, (key, data, want)) in cases.iter().enumerate() {
            let got = Hmac::new(Algorithm::HmacMd5, key).tag(&[data]);
            assert_eq!(got.to_vec(), hex(want), "RFC 2202 test case {}", i + 1);
        }
    }

    #[test]
    fn rfc4231_hmac_sha256_vectors_truncated() {
        let cases = rfc4231();
        assert_eq!(cases.len(), 7);
        for (i, (key, data, want)) in cases.iter().enumerate() {
            let got = Hmac::new(Algorithm::HmacSha256_128, key).tag(&[data]);
            assert_eq!(
                got.to_vec(),
                hex(want)[..16],
                "RFC 4231 test case {}",
                i + 1
            );
        }
    }

    #[test]
    fn parts_are_concatenated() {
        let key = Key::new(1, Algorithm::HmacSha256_128, &[0x42; 32]).unwrap();
        let whole = tag(&key, &[b"what do ya want for nothing?"]);
        assert_eq!(
            tag(&key, &[b"what do ", b"", b"ya want", b" for nothing?"]),
            whole
        );
        assert_ne!(tag(&key, &[b"what do ya want for nothing!"]), whole);
    }

    #[test]
    fn key_lengths_are_enforced() {
        assert_eq!(
            Key::new(1, Algorithm::HmacMd5, &[1; 15]).unwrap_err(),
            KeyError::TooShort { len: 15 }
        );
        assert_eq!(
            Key::new(1, Algorithm::HmacMd5, &[1; 65]).unwrap_err(),
            KeyError::TooLong { len: 65 }
        );
        assert!(Key::new(1, Algorithm::HmacMd5, &[1; 16]).is_ok());
        let k = Key::new(200, Algorithm::HmacSha256_128, &[1; 64]).unwrap();
        assert_eq!((k.id(), k.algorithm()), (200, Algorithm::HmacSha256_128));
        assert!(KeyError::TooShort { len: 3 }
            .to_string()
            .contains("3 bytes"));
    }

    #[test]
    fn key_uses_rfc2202_states() {
        // Case 3's key is 16 bytes, acceptable to Key::new: same tag through the API.
        let k = Key::new(5, Algorithm::HmacMd5, &[0xaa; 16]).unwrap();
        assert_eq!(
            tag(&k, &[&[0xdd; 50]]).to_vec(),
            hex("56be34521d144c88dbb8c733f0e8b3f6")
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let k = Key::new(3, Algorithm::HmacMd5, b"0123456789abcdef-secret").unwrap();
        let s = format!("{k:?}");
        assert_eq!(s, "Key { id: 3, algorithm: HmacMd5, .. }");
        let ring = format!("{:?}", Keyring::new(k));
        assert!(
            !ring.contains("secret") && !ring.contains("48, 49"),
            "{ring}"
        );
    }

    #[test]
    fn verify_accepts_own_tag_and_refuses_others() {
        let k = Key::new(1, Algorithm::HmacMd5, &[7; 20]).unwrap();
        let t = tag(&k, &[b"abc"]);
        assert_eq!(verify_tag(&k, &[b"abc"], &t), Ok(()));
        assert_eq!(verify_tag(&k, &[b"abd"], &t), Err(AuthError::BadTag));
        for i in 0..TAG_LEN {
            let mut bad = t;
            bad[i] ^= 0x80;
            assert_eq!(verify_tag(&k, &[b"abc"], &bad), Err(AuthError::BadTag));
        }
        assert_eq!(verify_tag(&k, &[b"abc"], &t[..15]), Err(AuthError::BadTag));
        assert_eq!(verify_tag(&k, &[b"abc"], &[]), Err(AuthError::BadTag));
        // Same secret, other algorithm: another tag.
        let k2 = Key::new(1, Algorithm::HmacSha256_128, &[7; 20]).unwrap();
        assert_eq!(verify_tag(&k2, &[b"abc"], &t), Err(AuthError::BadTag));
    }

    #[test]
    fn keyring_rollover() {
        let a = Key::new(1, Algorithm::HmacMd5, &[1; 16]).unwrap();
        let b = Key::new(2, Algorithm::HmacSha256_128, &[2; 16]).unwrap();
        let c = Key::new(3, Algorithm::HmacMd5, &[3; 16]).unwrap();
        let ta = tag(&a, &[b"x"]);
        let tb = tag(&b, &[b"x"]);

        let empty = Keyring::default();
        assert!(empty.sign_key().is_none());
        assert_eq!(
            empty.verify(1, &[b"x"], &ta).unwrap_err(),
            AuthError::UnknownKey
        );

        let mut ring = Keyring::new(a.clone());
        assert_eq!(ring.sign_key().unwrap().id(), 1);
        assert_eq!(ring.verify(1, &[b"x"], &ta).unwrap().id(), 1);
        assert_eq!(
            ring.verify(2, &[b"x"], &tb).unwrap_err(),
            AuthError::UnknownKey
        );
        assert_eq!(
            ring.rotate(a.clone()).unwrap_err(),
            KeyError::DuplicateId(1)
        );

        ring.rotate(b).unwrap();
        assert_eq!(ring.sign_key().unwrap().id(), 2);
        assert_eq!(ring.previous().unwrap().id(), 1);
        // Both verify during the rollover, each only with its own tag.
        assert!(ring.verify(1, &[b"x"], &ta).is_ok());
        assert!(ring.verify(2, &[b"x"], &tb).is_ok());
        assert_eq!(ring.verify(2, &[b"x"], &ta).unwrap_err(), AuthError::BadTag);

        ring.rotate(c).unwrap();
        assert!(ring.get(1).is_none(), "the oldest key is dropped");
        assert_eq!(ring.get(2).unwrap().id(), 2);
        assert_eq!(ring.retire_previous().unwrap().id(), 2);
        assert!(ring.get(2).is_none());
        assert_eq!(ring.get(3).unwrap().id(), 3);
    }

    #[test]
    fn algorithm_names_round_trip() {
        for a in [Algorithm::HmacMd5, Algorithm::HmacSha256_128] {
            assert_eq!(Algorithm::from_name(a.name()), Some(a));
            assert_eq!(a.to_string(), a.name());
        }
        assert_eq!(Algorithm::from_name("md5"), None);
        // `null` exists only in benchmark builds.
        assert_eq!(
            Algorithm::from_name("null").is_some(),
            cfg!(feature = "bench-null-auth")
        );
    }

    /// RFC 2104 §2 written out directly, allocating: the reference for the proptest.
    fn reference_hmac<D: Digest>(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut k = if key.len() > 64 {
            D::digest(key).to_vec()
        } else {
            key.to_vec()
        };
        k.resize(64, 0);
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = D::digest([ipad, msg.to_vec()].concat());
        D::digest([opad, inner.to_vec()].concat()).to_vec()
    }

    proptest! {
        #[test]
        fn matches_reference_hmac(key in proptest::collection::vec(any::<u8>(), 1..100),
                                  msg in proptest::collection::vec(any::<u8>(), 0..300),
                                  split in any::<prop::sample::Index>()) {
            let cut = split.index(msg.len() + 1);
            let parts: [&[u8]; 2] = [&msg[..cut], &msg[cut..]];
            let md5 = Hmac::new(Algorithm::HmacMd5, &key).tag(&parts);
            prop_assert_eq!(md5.to_vec(), reference_hmac::<Md5>(&key, &msg));
            let sha = Hmac::new(Algorithm::HmacSha256_128, &key).tag(&parts);
            prop_assert_eq!(&sha[..], &reference_hmac::<Sha256>(&key, &msg)[..16]);
        }
    }

    #[cfg(feature = "bench-null-auth")]
    #[test]
    fn null_tags_are_zero_and_verify_only_zero() {
        let k = Key::new(9, Algorithm::Null, &[1; 16]).unwrap();
        assert_eq!(k.algorithm().name(), "null");
        assert_eq!(tag(&k, &[b"anything"]), [0; TAG_LEN]);
        assert!(verify_tag(&k, &[b"x"], &[0; TAG_LEN]).is_ok());
        assert!(verify_tag(&k, &[b"x"], &[1; TAG_LEN]).is_err());
    }
}
