//! The `protocol` module (being written).
