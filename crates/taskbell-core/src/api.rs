//! The `api` module (being written).
