//! The `config` module (being written).
