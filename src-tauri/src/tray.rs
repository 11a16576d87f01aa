//! The tray as the OS shows it: the icon (the state's bell with its badge), the tooltip
//! and the menu, rendered from the pure models in [`crate::view::menu`] and
//! [`crate::view::icon`]. Only [`install`] and [`apply`] touch Tauri.

use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager, Runtime};

use crate::model::{Lang, UiStatus};
use crate::view::icon::{
    IconState, LEFT_CLICK_OPENS_CENTER, TEMPLATE_ICONS, draw_badge, to_template,
};
use crate::view::menu::{Entry, MenuId, menu_model, tooltip};

/// The id of the one tray icon the app owns.
pub const TRAY_ID: &str = "taskbell";

/// The icon image for `status`: the state's PNG with the unread badge drawn on it (a
/// template image where [`TEMPLATE_ICONS`]).
pub fn icon_for(status: &UiStatus) -> tauri::Result<Image<'static>> {
    let base = Image::from_bytes(IconState::of(status).png())?;
    let (w, h) = (base.width(), base.height());
    let mut rgba = base.rgba().to_vec();
    draw_badge(&mut rgba, w, h, status.unread);
    if TEMPLATE_ICONS {
        to_template(&mut rgba);
    }
    Ok(Image::new_owned(rgba, w, h))
}

fn build_entries<R: Runtime, M: Manager<R>>(
    app: &M,
    entries: &[Entry],
) -> tauri::Result<Vec<Box<dyn IsMenuItem<R>>>> {
    let mut out: Vec<Box<dyn IsMenuItem<R>>> = Vec::with_capacity(entries.len());
    for e in entries {
        match e {
            Entry::Item { id, label, enabled } => out.push(Box::new(MenuItem::with_id(
                app,
                id.as_str(),
                label,
                *enabled,
                None::<&str>,
            )?)),
            Entry::Separator => out.push(Box::new(PredefinedMenuItem::separator(app)?)),
            Entry::Submenu { id, label, items } => {
                let children = build_entries(app, items)?;
                let refs: Vec<&dyn IsMenuItem<R>> = children.iter().map(|b| b.as_ref()).collect();
                out.push(Box::new(Submenu::with_id_and_items(
                    app,
                    id.as_str(),
                    label,
                    true,
                    &refs,
                )?));
            }
        }
    }
    Ok(out)
}

/// Turns the menu model into a Tauri menu.
pub fn build_menu<R: Runtime, M: Manager<R>>(app: &M, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let items = build_entries(app, entries)?;
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|b| b.as_ref()).collect();
    Menu::with_items(app, &refs)
}

/// What a menu click (its entry's id) is handed to.
pub type MenuHandler<R> = fn(&AppHandle<R>, &str);

/// Creates the tray icon. Menu clicks (and, where [`LEFT_CLICK_OPENS_CENTER`], a left
/// click, as the Notifications entry) go to `on_menu`.
pub fn install<R: Runtime>(
    app: &AppHandle<R>,
    status: &UiStatus,
    lang: Lang,
    on_menu: MenuHandler<R>,
) -> tauri::Result<()> {
    let menu = build_menu(app, &menu_model(status, lang))?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon_for(status)?)
        .tooltip(tooltip(status, lang))
        .icon_as_template(TEMPLATE_ICONS)
        .menu(&menu)
        .show_menu_on_left_click(!LEFT_CLICK_OPENS_CENTER)
        .on_menu_event(move |app, event| on_menu(app, event.id().as_ref()))
        .on_tray_icon_event(move |tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                if LEFT_CLICK_OPENS_CENTER {
                    on_menu(tray.app_handle(), MenuId::Notifications.as_str());
                }
            }
        })
        .build(app)?;
    Ok(())
}

/// Brings the tray icon, tooltip and menu up to date with `status`. No-op without a tray
/// (tests with the mock runtime run without one).
pub fn apply<R: Runtime>(app: &AppHandle<R>, status: &UiStatus, lang: Lang) -> tauri::Result<()> {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return Ok(());
    };
    tray.set_icon(Some(icon_for(status)?))?;
    tray.set_icon_as_template(TEMPLATE_ICONS)?;
    tray.set_tooltip(Some(tooltip(status, lang)))?;
    tray.set_menu(Some(build_menu(app, &menu_model(status, lang))?))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConnState, test_status as status};

    #[test]
    fn every_state_icon_decodes_to_64px_rgba() {
        for st in [
            IconState::Connected,
            IconState::Connecting,
            IconState::Offline,
            IconState::SignedOut,
            IconState::Paused,
        ] {
            let img = Image::from_bytes(st.png()).expect("decodes");
            assert_eq!((img.width(), img.height()), (64, 64), "{st:?}");
        }
    }

    #[test]
    fn template_icons_keep_the_shape_and_knock_out_light_details() {
        // Three unread: the badge is drawn.
        let coloured = icon_for(&status(ConnState::Connected {
            latency_ms: Some(20),
        }))
        .unwrap();
        let mut rgba = coloured.rgba().to_vec();
        let opaque_before = rgba.chunks_exact(4).filter(|p| p[3] > 0).count();
        let light = rgba
            .chunks_exact(4)
            .filter(|p| p[3] > 0 && p[..3].iter().all(|&c| c >= 0xd0))
            .count();
        assert!(light > 0, "the badge digits are white");
        to_template(&mut rgba);
        assert!(rgba.chunks_exact(4).all(|p| p[..3] == [0, 0, 0]));
        let opaque_after = rgba.chunks_exact(4).filter(|p| p[3] > 0).count();
        assert_eq!(opaque_after, opaque_before - light);
        // Only macOS uses templates; Linux keeps its coloured state icons.
        assert_eq!(TEMPLATE_ICONS, cfg!(target_os = "macos"));
        assert_eq!(LEFT_CLICK_OPENS_CENTER, cfg!(target_os = "windows"));
    }
}
