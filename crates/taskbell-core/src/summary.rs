//! The `summary` module (being written).
