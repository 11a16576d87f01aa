//! The `i18n` module (being written).
