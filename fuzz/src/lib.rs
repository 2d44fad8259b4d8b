//! Support code shared by the fuzz targets in `fuzz_targets/`.
//!
//! - [`alloc`]: a counting global allocator, so targets can assert that per-packet code
//!   does not allocate (the pipeline's documented invariant).
//! - [`fixup`]: repairs lengths and checksums of fuzzer-made frames (so mutations get
//!   past checksum checks into the code behind them) and checks transport checksums.
//! - [`bufs`]: [`bufs::CountedBuf`], a [`PacketBuf`] that counts how each buffer ends.
//! - [`io`]: [`io::FuzzIo`], the test `Io` the role targets hand to `Role::handle`.
//! - [`records`]: the input format of the role targets (a sequence of frames and
//!   commands) and [`records::run_role`], the driver that feeds them to a role.
//! - [`setup`]: the fixed configurations (addresses, keys) of the role targets.
//!
//! Invariant: every check is an `assert!`: a violated property is a crash libFuzzer
//! records, never a silently skipped input.

pub mod alloc;
pub mod bufs;
pub mod fixup;
pub mod io;
pub mod records;
pub mod setup;

pub use aves_dataplane::buf::PacketBuf;

/// Reads byte `i` of `data`, 0 past the end (inputs of any length are valid).
pub fn byte(data: &[u8], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

/// Reads a big-endian u16 at `i`, zero-padded past the end.
pub fn be16(data: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([byte(data, i), byte(data, i + 1)])
}

/// Reads a big-endian u32 at `i`, zero-padded past the end.
pub fn be32(data: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([
        byte(data, i),
        byte(data, i + 1),
        byte(data, i + 2),
        byte(data, i + 3),
    ])
}
