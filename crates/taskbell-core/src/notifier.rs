//! The `notifier` module (being written).
