//! The `backoff` module (being written).
