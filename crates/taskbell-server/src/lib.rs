//! # taskbell-server
//!
//! The reference implementation of TaskBell's platform contract (being written).
