//! The `aves` binary. (Skeleton.)
#![deny(unsafe_code)]
fn main() {}
