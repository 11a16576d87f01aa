//! The `delivery` module (being written).
