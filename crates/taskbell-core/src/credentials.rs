//! The `credentials` module (being written).
