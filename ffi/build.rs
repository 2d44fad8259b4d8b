//! Build script placeholder (replaced by the bindgen build).
fn main() {}
