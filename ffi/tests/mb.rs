//! The multi-buffer HMAC engine agrees with a reference HMAC (RustCrypto's `hmac`) on
//! random keys, lengths and burst sizes, and with RFC 2202 / RFC 4231.

use dpdk_sys::mb::{MbAlgorithm, MultiHmac};
use hmac::{Hmac, Mac};
use proptest::prelude::*;

fn reference(alg: MbAlgorithm, key: &[u8], msg: &[u8]) -> [u8; 16] {
    let full = match alg {
        MbAlgorithm::HmacMd5 => {
            let mut m = Hmac::<md5::Md5>::new_from_slice(key).unwrap();
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
        MbAlgorithm::HmacSha256_128 => {
            let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
            m.update(msg);
            m.finalize().into_bytes().to_vec()
        }
    };
    full[..16].try_into().unwrap()
}

#[test]
fn rfc_vectors() {
    let mut mb = MultiHmac::new().expect("ipsec-mb runs on this CPU");
    // RFC 2202 test case 2: key "Jefe", "what do ya want for nothing?".
    let k = mb.key(MbAlgorithm::HmacMd5, b"Jefe").unwrap();
    let mut tags = [[0u8; 16]; 1];
    assert_eq!(
        mb.tag_burst(&k, &[b"what do ya want for nothing?"], &mut tags),
        1
    );
    assert_eq!(
        tags[0],
        *b"\x75\x0c\x78\x3e\x6a\xb0\xb5\x03\xea\xa8\x6e\x31\x0a\x5d\xb7\x38"
    );
    // RFC 4231 test case 2, truncated to 128 bits.
    let k = mb.key(MbAlgorithm::HmacSha256_128, b"Jefe").unwrap();
    assert_eq!(
        mb.tag_burst(&k, &[b"what do ya want for nothing?"], &mut tags),
        1
    );
    assert_eq!(
        tags[0],
        *b"\x5b\xdc\xc1\x46\xbf\x60\x75\x4e\x6a\x04\x24\x26\x08\x95\x75\xc7"
    );
    assert!(
        mb.key(MbAlgorithm::HmacMd5, &[0u8; 65]).is_none(),
        "keys over a block refused"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn bursts_match_the_reference(
        sha in any::<bool>(),
        key in proptest::collection::vec(any::<u8>(), 16..=64),
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..1600), 1..=40),
    ) {
        let alg = if sha { MbAlgorithm::HmacSha256_128 } else { MbAlgorithm::HmacMd5 };
        let mut mb = MultiHmac::new().unwrap();
        let k = mb.key(alg, &key).unwrap();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
        let mut tags = vec![[0u8; 16]; refs.len()];
        prop_assert_eq!(mb.tag_burst(&k, &refs, &mut tags), refs.len());
        for (m, t) in refs.iter().zip(&tags) {
            prop_assert_eq!(*t, reference(alg, &key, m));
        }
    }
}
