//! Zero-copy packet views and `Repr` parse/emit pairs, in smoltcp's style.
//!
//! A view is `Packet<T: AsRef<[u8]>>`: getters need `AsRef`, setters `AsMut`. Each view's
//! `new_checked` validates lengths once; after it no accessor panics on any bytes. Field
//! offsets live in a private `field` module per protocol; fields are read by offset,
//! never by casting to packed structs.
//!
//! `Repr` types hold a header's meaning; `parse` and `emit` are exact inverses for
//! every `Repr` that `parse` can return (tested by round trips).

pub mod arp;
pub mod aves;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ipv6ext;
pub mod tcp;
pub mod udp;

/// Why a view or `Repr` refused some bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header (or the length it claims) needs.
    Truncated,
    /// A field holds a value the protocol forbids (version, lengths, types).
    Malformed,
    /// The checksum does not verify.
    Checksum,
    /// Valid, but not something this code handles (an unknown type or option).
    Unsupported,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated",
            WireError::Malformed => "malformed",
            WireError::Checksum => "bad checksum",
            WireError::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for WireError {}

/// Shorthand for wire results.
pub type Result<T> = std::result::Result<T, WireError>;
