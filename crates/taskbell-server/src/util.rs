//! Small helpers: clocks and notification ids.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A notification id of the Redis stream id shape `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct NotifId {
    pub ms: u64,
    pub seq: u64,
}

impl NotifId {
    /// Parses `<ms>-<seq>` (a bare `<ms>` means `<ms>-0`, as in Redis).
    pub fn parse(s: &str) -> Option<Self> {
        let (ms, seq) = match s.split_once('-') {
            Some((a, b)) => (a, b),
            None => (s, "0"),
        };
        let all_digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(ms) || !all_digits(seq) {
            return None;
        }
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for NotifId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_order() {
        let a = NotifId::parse("1699012345678-0").unwrap();
        let b = NotifId::parse("1699012345678-10").unwrap();
        let c = NotifId::parse("1699012345679").unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "1699012345678-10");
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "a-1",
            "1-2-3",
            "１-2",
            "99999999999999999999999-0",
        ] {
            assert_eq!(NotifId::parse(bad), None, "{bad:?}");
        }
    }
}
