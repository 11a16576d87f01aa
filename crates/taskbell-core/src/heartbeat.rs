//! The `heartbeat` module (being written).
