//! The tray icon as pixels: which state's bell to show, the unread badge drawn on it,
//! and the macOS template form. Pure (RGBA buffers in, RGBA out); `crate::tray` decodes
//! the PNGs and hands the result to the OS.

use serde::{Deserialize, Serialize};

use crate::model::{ConnState, UiStatus};

/// What the tray icon shows, one PNG per state (from `icons/src/<state>.svg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IconState {
    /// Signed in, socket open.
    Connected,
    /// Connecting for the first time or waiting to reconnect.
    Connecting,
    /// No network or the server is unreachable for good.
    Offline,
    /// Nobody is signed in.
    SignedOut,
    /// Signed in, notifications paused.
    Paused,
}

impl IconState {
    /// The state the icon should show for `status` (pause wins over a working connection).
    pub fn of(status: &UiStatus) -> Self {
        match &status.state {
            ConnState::SignedOut { .. } => Self::SignedOut,
            ConnState::Offline { .. } => Self::Offline,
            ConnState::Connecting | ConnState::Reconnecting { .. } => Self::Connecting,
            ConnState::Connected { .. } if status.paused_until_ms.is_some() => Self::Paused,
            ConnState::Connected { .. } => Self::Connected,
        }
    }

    /// The committed PNG for this state (64×64 RGBA), built from `icons/src/<state>.svg`.
    pub fn png(self) -> &'static [u8] {
        match self {
            Self::Connected => include_bytes!("../../../../icons/tray/connected.png"),
            Self::Connecting => include_bytes!("../../../../icons/tray/connecting.png"),
            Self::Offline => include_bytes!("../../../../icons/tray/offline.png"),
            Self::SignedOut => include_bytes!("../../../../icons/tray/signed-out.png"),
            Self::Paused => include_bytes!("../../../../icons/tray/paused.png"),
        }
    }
}

/// A 3×5 bitmap font for the badge digits and "+"; each row is 3 bits, MSB left.
const GLYPHS: [[u8; 5]; 11] = [
    [0b111, 0b101, 0b101, 0b101, 0b111], // 0
    [0b010, 0b110, 0b010, 0b010, 0b111], // 1
    [0b111, 0b001, 0b111, 0b100, 0b111], // 2
    [0b111, 0b001, 0b111, 0b001, 0b111], // 3
    [0b101, 0b101, 0b111, 0b001, 0b001], // 4
    [0b111, 0b100, 0b111, 0b001, 0b111], // 5
    [0b111, 0b100, 0b111, 0b101, 0b111], // 6
    [0b111, 0b001, 0b010, 0b010, 0b010], // 7
    [0b111, 0b101, 0b111, 0b101, 0b111], // 8
    [0b111, 0b101, 0b111, 0b001, 0b111], // 9
    [0b000, 0b010, 0b111, 0b010, 0b000], // +
];

/// The badge's fill colour (RGBA).
pub const BADGE_RED: [u8; 4] = [0xd9, 0x30, 0x25, 0xff];

/// Draws the unread badge (a red disc with the count, "9+" above nine) into the top-right
/// corner of an RGBA image. `unread == 0` leaves the image untouched.
pub fn draw_badge(rgba: &mut [u8], width: u32, height: u32, unread: u64) {
    if unread == 0 || width < 16 || height < 16 || rgba.len() < (width * height * 4) as usize {
        return;
    }
    let (w, h) = (width as i64, height as i64);
    let r = (w.min(h) * 9 / 32).max(5); // 18 px radius on a 64 px icon
    let (cx, cy) = (w - r - 1, r + 1);
    let mut put = |x: i64, y: i64, c: [u8; 4]| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            let i = ((y * w + x) * 4) as usize;
            rgba[i..i + 4].copy_from_slice(&c);
        }
    };
    for y in cy - r - 1..=cy + r + 1 {
        for x in cx - r - 1..=cx + r + 1 {
            let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
            if d2 <= r * r {
                put(x, y, BADGE_RED);
            } else if d2 <= (r + 1) * (r + 1) {
                put(x, y, [0xff, 0xff, 0xff, 0xff]);
            }
        }
    }
    let glyphs: Vec<usize> = if unread > 9 {
        vec![9, 10]
    } else {
        vec![unread as usize]
    };
    let scale = (r / 4).max(1);
    let gw = 3 * scale;
    let gap = scale;
    let total = glyphs.len() as i64 * gw + (glyphs.len() as i64 - 1) * gap;
    let x0 = cx - total / 2;
    let y0 = cy - 5 * scale / 2;
    for (k, g) in glyphs.iter().enumerate() {
        let gx = x0 + k as i64 * (gw + gap);
        for (row, bits) in GLYPHS[*g].iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(
                                gx + col * scale + dx,
                                y0 + row as i64 * scale + dy,
                                [0xff; 4],
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The name panels show for the tray item.
pub const APP_NAME: &str = "TaskBell";

/// macOS draws menu-bar icons as templates: only the alpha channel counts, tinted to suit
/// the light or dark menu bar. Elsewhere the coloured icons are shown as they are.
pub const TEMPLATE_ICONS: bool = cfg!(target_os = "macos");

/// Windows users expect a left click on a notification-area icon to open the app and a
/// right click to show its menu; macOS menu-bar items and Linux AppIndicators show the menu
/// on any click (libappindicator reports no clicks at all).
pub const LEFT_CLICK_OPENS_CENTER: bool = cfg!(target_os = "windows");

/// Turns a coloured RGBA icon into a template image: every visible pixel black, near-white
/// details (the bell's highlights, the badge digits) knocked out so they still show as
/// holes once the OS tints the shape.
pub fn to_template(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let light = px[0] >= 0xd0 && px[1] >= 0xd0 && px[2] >= 0xd0;
        px[3] = if light { 0 } else { px[3] };
        px[0] = 0;
        px[1] = 0;
        px[2] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_status as status;

    #[test]
    fn icon_state_follows_connection_and_pause() {
        let mut s = status(ConnState::Connected { latency_ms: None });
        assert_eq!(IconState::of(&s), IconState::Connected);
        s.paused_until_ms = Some(1);
        assert_eq!(IconState::of(&s), IconState::Paused);
        s.state = ConnState::Offline {
            reason: "down".into(),
        };
        assert_eq!(IconState::of(&s), IconState::Offline);
        s.state = ConnState::Connecting;
        assert_eq!(IconState::of(&s), IconState::Connecting);
        s.state = ConnState::SignedOut { reason: None };
        assert_eq!(IconState::of(&s), IconState::SignedOut);
    }

    #[test]
    fn badge_is_drawn_only_when_there_is_something_unread() {
        let blank = vec![0u8; 64 * 64 * 4];
        let mut img = blank.clone();
        draw_badge(&mut img, 64, 64, 0);
        assert_eq!(img, blank);
        draw_badge(&mut img, 64, 64, 7);
        // The disc's edge (left of centre, clear of the digit) is red, the far corner untouched.
        let px = |x: usize, y: usize| img[(y * 64 + x) * 4..(y * 64 + x) * 4 + 4].to_vec();
        assert_eq!(px(64 - 18 - 1 - 15, 18 + 1), BADGE_RED.to_vec());
        assert_eq!(px(0, 63), vec![0, 0, 0, 0]);
        // Some white digit pixels inside the disc.
        let white = (30..64)
            .flat_map(|x| (0..34).map(move |y| (x, y)))
            .filter(|&(x, y)| px(x, y) == vec![255; 4])
            .count();
        assert!(white > 20, "digit drawn ({white} white px)");
        let mut many = blank.clone();
        draw_badge(&mut many, 64, 64, 120);
        assert_ne!(many, img, "9+ differs from 7");
    }

    #[test]
    fn badge_ignores_images_too_small_or_short_buffers() {
        let mut tiny = vec![0u8; 8 * 8 * 4];
        draw_badge(&mut tiny, 8, 8, 5);
        assert!(tiny.iter().all(|b| *b == 0));
        let mut short = vec![0u8; 10];
        draw_badge(&mut short, 64, 64, 5);
        assert!(short.iter().all(|b| *b == 0));
    }
}
