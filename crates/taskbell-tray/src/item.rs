//! The tray icon as a StatusNotifierItem (KDE, GNOME's AppIndicator extension, waybar,
//! …) with its `com.canonical.dbusmenu` menu, rendered from the pure models of
//! `taskbell_desktop::view` ([`menu_model`], [`tooltip`], the icon pixels). A click in
//! the menu only sends the entry's id on a channel; the controller acts on it.

use ksni::menu::{StandardItem, SubMenu};
use ksni::{Icon, MenuItem, ToolTip};
use taskbell_desktop::model::{Lang, UiStatus};
use taskbell_desktop::view::icon::{APP_NAME, IconState, draw_badge};
use taskbell_desktop::view::menu::{Entry, menu_model, tooltip};
use tokio::sync::mpsc;

/// What the item shows, and where its clicks go.
#[derive(Debug)]
pub struct Item {
    /// The status shown.
    pub status: UiStatus,
    /// The language of the menu and tooltip.
    pub lang: Lang,
    /// The ids of clicked entries.
    pub clicks: mpsc::UnboundedSender<String>,
}

/// Why an icon could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum IconError {
    /// The PNG did not decode.
    #[error("icon: {0}")]
    Decode(#[from] png::DecodingError),
    /// The PNG is not 8-bit RGBA.
    #[error("icon: not 8-bit RGBA ({0:?}, {1:?})")]
    Format(png::ColorType, png::BitDepth),
}

/// The state's icon with its unread badge, as RGBA pixels: `(width, height, rgba)`.
pub fn rgba_icon(status: &UiStatus) -> Result<(u32, u32, Vec<u8>), IconError> {
    let decoder = png::Decoder::new(std::io::Cursor::new(IconState::of(status).png()));
    let mut reader = decoder.read_info()?;
    let size = reader.output_buffer_size().unwrap_or(0);
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf)?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(IconError::Format(info.color_type, info.bit_depth));
    }
    buf.truncate(info.buffer_size());
    draw_badge(&mut buf, info.width, info.height, status.unread);
    Ok((info.width, info.height, buf))
}

/// RGBA pixels as the StatusNotifierItem wants them: ARGB32 in network byte order.
pub fn to_argb(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[3], p[0], p[1], p[2]])
        .collect()
}

/// A label as dbusmenu shows it: `_` marks a mnemonic there, so a literal one is doubled.
pub fn dbusmenu_label(label: &str) -> String {
    label.replace('_', "__")
}

fn entries(model: &[Entry]) -> Vec<MenuItem<Item>> {
    model
        .iter()
        .map(|e| match e {
            Entry::Item { id, label, enabled } => {
                let id = id.clone();
                StandardItem {
                    label: dbusmenu_label(label),
                    enabled: *enabled,
                    activate: Box::new(move |item: &mut Item| {
                        let _ = item.clicks.send(id.clone());
                    }),
                    ..Default::default()
                }
                .into()
            }
            Entry::Separator => MenuItem::Separator,
            Entry::Submenu { label, items, .. } => SubMenu {
                label: dbusmenu_label(label),
                submenu: entries(items),
                ..Default::default()
            }
            .into(),
        })
        .collect()
}

impl ksni::Tray for Item {
    // A left click shows the menu, as libappindicator's items did.
    const MENU_ON_ACTIVATE: bool = true;

    fn id(&self) -> String {
        "taskbell".into()
    }

    fn title(&self) -> String {
        APP_NAME.into()
    }

    fn icon_pixmap(&self) -> Vec<Icon> {
        match rgba_icon(&self.status) {
            Ok((w, h, rgba)) => vec![Icon {
                width: i32::try_from(w).unwrap_or(0),
                height: i32::try_from(h).unwrap_or(0),
                data: to_argb(&rgba),
            }],
            Err(e) => {
                tracing::warn!("{e}");
                Vec::new()
            }
        }
    }

    fn tool_tip(&self) -> ToolTip {
        ToolTip {
            title: APP_NAME.into(),
            description: tooltip(&self.status, self.lang),
            ..Default::default()
        }
    }

    fn menu(&self) -> Vec<MenuItem<Self>> {
        entries(&menu_model(&self.status, self.lang))
    }

    fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
        // Keep running: toasts still show, and the item registers again when a tray
        // host (re)appears.
        tracing::warn!("no StatusNotifier host shows the tray icon now: {reason:?}");
        true
    }

    fn watcher_online(&self) {
        tracing::info!("a StatusNotifier host shows the tray icon");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskbell_desktop::model::{ConnState, test_status};

    #[test]
    fn the_icon_is_the_states_png_with_its_badge_in_argb() {
        let status = test_status(ConnState::Connected {
            latency_ms: Some(20),
        });
        let (w, h, rgba) = rgba_icon(&status).expect("icon");
        assert_eq!((w, h, rgba.len()), (64, 64, 64 * 64 * 4));
        let plain = rgba_icon(&UiStatus {
            unread: 0,
            ..status.clone()
        })
        .expect("icon");
        assert_ne!(rgba, plain.2, "three unread draw a badge");
        let argb = to_argb(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(argb, [4, 1, 2, 3, 8, 5, 6, 7]);
    }

    #[test]
    fn menu_entries_keep_labels_ids_and_nesting() {
        assert_eq!(dbusmenu_label("a_b"), "a__b");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut item = Item {
            status: test_status(ConnState::Connected { latency_ms: None }),
            lang: Lang::En,
            clicks: tx,
        };
        let model = menu_model(&item.status, item.lang);
        let menu = ksni::Tray::menu(&item);
        assert_eq!(menu.len(), model.len());
        // Click every top-level item: each sends its own id.
        let mut sent = Vec::new();
        for (m, e) in menu.into_iter().zip(&model) {
            match (m, e) {
                (MenuItem::Standard(s), Entry::Item { id, label, .. }) => {
                    assert_eq!(s.label, dbusmenu_label(label));
                    (s.activate)(&mut item);
                    sent.push(id.clone());
                }
                (MenuItem::Separator, Entry::Separator) => {}
                (MenuItem::SubMenu(s), Entry::Submenu { label, items, .. }) => {
                    assert_eq!(s.label, dbusmenu_label(label));
                    assert_eq!(s.submenu.len(), items.len());
                }
                (m, e) => panic!("{e:?} became {m:?}"),
            }
        }
        let mut got = Vec::new();
        while let Ok(id) = rx.try_recv() {
            got.push(id);
        }
        assert!(!got.is_empty());
        assert_eq!(got, sent);
    }
}
