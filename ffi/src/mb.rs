//! Multi-buffer HMAC over Intel's ipsec-mb: tags a whole burst of messages at once (the
//! library interleaves independent messages in SIMD lanes), instead of hashing one
//! packet at a time. Used for the AVES tunnel authenticator (HMAC-MD5, or HMAC-SHA-256
//! truncated to 16 bytes); `aves-dataplane`'s own `auth` module is the portable path and
//! the reference the tests compare against.

use crate::raw;
use std::ffi::c_void;
use std::ptr::NonNull;

/// Most messages per call.
pub const MAX_BURST: usize = 64;

/// The hash of an HMAC key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MbAlgorithm {
    /// HMAC-MD5 (RFC 2104), 16-byte tag.
    HmacMd5,
    /// HMAC-SHA-256 truncated to 16 bytes.
    HmacSha256_128,
}

impl MbAlgorithm {
    fn code(self) -> i32 {
        match self {
            MbAlgorithm::HmacMd5 => 0,
            MbAlgorithm::HmacSha256_128 => 1,
        }
    }
}

/// A key prepared for the multi-buffer engine (its HMAC inner and outer states).
#[derive(Clone)]
pub struct MbKey {
    alg: MbAlgorithm,
    ipad: [u8; 32],
    opad: [u8; 32],
}

impl std::fmt::Debug for MbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MbKey({:?})", self.alg)
    }
}

/// One ipsec-mb manager. Not thread-safe: one per lcore.
pub struct MultiHmac {
    mgr: NonNull<c_void>,
}

// SAFETY: the manager is used by one thread at a time (&mut self for every call);
// moving it to the lcore that will own it is fine.
unsafe impl Send for MultiHmac {}

impl std::fmt::Debug for MultiHmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MultiHmac")
    }
}

impl MultiHmac {
    /// A manager for this CPU's best instruction set (SSE/AVX/AVX2/AVX-512). None if
    /// the library cannot run here.
    pub fn new() -> Option<MultiHmac> {
        // SAFETY: plain constructor; returns NULL on failure.
        NonNull::new(unsafe { raw::aves_mb_new() }).map(|mgr| MultiHmac { mgr })
    }

    /// Prepares `secret` (at most 64 bytes) for `alg`.
    pub fn key(&mut self, alg: MbAlgorithm, secret: &[u8]) -> Option<MbKey> {
        let len = u32::try_from(secret.len()).ok().filter(|l| *l <= 64)?;
        let mut k = MbKey {
            alg,
            ipad: [0; 32],
            opad: [0; 32],
        };
        // SAFETY: secret is valid for len bytes; ipad/opad have room for a SHA-256 state.
        let rc = unsafe {
            raw::aves_mb_hmac_prep(
                self.mgr.as_ptr(),
                alg.code(),
                secret.as_ptr(),
                len,
                k.ipad.as_mut_ptr(),
                k.opad.as_mut_ptr(),
            )
        };
        (rc == 0).then_some(k)
    }

    /// Tags `msgs` (at most [`MAX_BURST`]) into `tags`; returns how many were tagged.
    /// Fewer than `msgs.len()` means the library refused a job (e.g. an empty message):
    /// the caller must not trust any tag of that call and should use its portable HMAC.
    pub fn tag_burst(&mut self, key: &MbKey, msgs: &[&[u8]], tags: &mut [[u8; 16]]) -> usize {
        let n = msgs.len().min(tags.len()).min(MAX_BURST);
        let mut ptrs = [std::ptr::null::<u8>(); MAX_BURST];
        let mut lens = [0u32; MAX_BURST];
        for (i, m) in msgs.iter().take(n).enumerate() {
            ptrs[i] = m.as_ptr();
            lens[i] = u32::try_from(m.len()).unwrap_or(u32::MAX);
        }
        if lens[..n].contains(&u32::MAX) {
            return 0;
        }
        // SAFETY: ptrs/lens describe n live slices; tags has room for n × 16 bytes
        // (a [[u8; 16]] is contiguous); the manager is ours (&mut self).
        let done = unsafe {
            raw::aves_mb_hmac_burst(
                self.mgr.as_ptr(),
                key.alg.code(),
                key.ipad.as_ptr(),
                key.opad.as_ptr(),
                n as u32,
                ptrs.as_ptr(),
                lens.as_ptr(),
                tags.as_mut_ptr().cast(),
            )
        };
        done as usize
    }
}

impl Drop for MultiHmac {
    fn drop(&mut self) {
        // SAFETY: the manager came from aves_mb_new and is not used after this.
        unsafe { raw::aves_mb_free(self.mgr.as_ptr()) }
    }
}
