//! The `history` module (being written).
