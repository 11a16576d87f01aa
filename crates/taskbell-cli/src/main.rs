//! The `taskbell` command (being written).
fn main() {}
