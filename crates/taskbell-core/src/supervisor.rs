//! The `supervisor` module (being written).
