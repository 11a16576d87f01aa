//! The `taskbell-server` binary (being written).
fn main() {}
