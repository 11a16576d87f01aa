//! Self-checks for the diagnostics window: is there a keyring, a notification daemon and a
//! tray host, and what to do when one is missing. Each check is blocking (D-Bus, X11);
//! callers run them off the main thread.

use taskbell_core::i18n::{Msg, tr};

use crate::model::{Check, Lang};

/// The StatusNotifierItem host registry that KDE, GNOME's AppIndicator extension, waybar…
/// put on the session bus.
#[cfg(target_os = "linux")]
const SNI_WATCHER: &str = "org.kde.StatusNotifierWatcher";

fn check(id: &str, result: Result<String, String>, fix: &str) -> Check {
    match result {
        Ok(detail) => Check {
            id: id.into(),
            ok: true,
            detail,
            fix: String::new(),
        },
        Err(detail) => Check {
            id: id.into(),
            ok: false,
            detail,
            fix: fix.into(),
        },
    }
}

/// The keyring check from how opening the keyring went at start.
pub fn keyring(opened: &Result<String, String>, lang: Lang) -> Check {
    check("keyring", opened.clone(), &tr(lang, Msg::FixKeyring))
}

/// Asks the session bus for a notification daemon.
pub fn notifications(lang: Lang) -> Check {
    let found = taskbell_core::notifier::probe()
        .map(|i| format!("{} {} ({})", i.name, i.version, i.vendor))
        .map_err(|e| e.to_string());
    check("notifications", found, &tr(lang, Msg::FixNotifications))
}

/// Windows' notification area and macOS' menu bar are always there.
#[cfg(not(target_os = "linux"))]
pub fn tray(_lang: Lang) -> Check {
    let host = if cfg!(target_os = "macos") {
        "the menu bar"
    } else {
        "the notification area"
    };
    check("tray", Ok(host.to_string()), "")
}

/// Looks for a tray host: a StatusNotifierWatcher on the session bus, or an XEmbed system
/// tray (the `_NET_SYSTEM_TRAY_S<n>` selection) on X11.
#[cfg(target_os = "linux")]
pub fn tray(lang: Lang) -> Check {
    let found = match (sni_watcher(), xembed_tray()) {
        (Ok(true), _) => Ok(format!("StatusNotifier host ({SNI_WATCHER})")),
        (_, Ok(Some(screen))) => Ok(format!("XEmbed system tray (_NET_SYSTEM_TRAY_S{screen})")),
        (sni, x) => {
            let why = |r: Result<String, String>| r.unwrap_or_else(|e| e);
            Err(format!(
                "no tray host: {}; {}",
                why(sni.map(|_| format!("no {SNI_WATCHER} on the session bus"))),
                why(x.map(|_| "no XEmbed tray on the X display".to_string()))
            ))
        }
    };
    check("tray", found, &tr(lang, Msg::FixTray))
}

/// Whether a StatusNotifierWatcher owns its name on the session bus.
#[cfg(target_os = "linux")]
pub fn sni_watcher() -> Result<bool, String> {
    let conn =
        zbus::blocking::Connection::session().map_err(|e| format!("no session D-Bus: {e}"))?;
    let proxy = zbus::blocking::fdo::DBusProxy::new(&conn).map_err(|e| e.to_string())?;
    let name = zbus::names::BusName::try_from(SNI_WATCHER).map_err(|e| e.to_string())?;
    proxy.name_has_owner(name).map_err(|e| e.to_string())
}

/// The screen number whose XEmbed tray selection has an owner, if any.
#[cfg(target_os = "linux")]
pub fn xembed_tray() -> Result<Option<usize>, String> {
    use x11rb::connection::Connection as _;
    use x11rb::protocol::xproto::ConnectionExt as _;
    let (conn, screen) = x11rb::connect(None).map_err(|e| format!("no X display: {e}"))?;
    let atom_name = format!("_NET_SYSTEM_TRAY_S{screen}");
    let atom = conn
        .intern_atom(false, atom_name.as_bytes())
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| e.to_string())?
        .atom;
    let owner = conn
        .get_selection_owner(atom)
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| e.to_string())?
        .owner;
    let _ = conn.setup();
    Ok((owner != x11rb::NONE).then_some(screen))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_check_passes_the_backend_or_says_what_to_do() {
        let ok = keyring(&Ok("Secret Service".into()), Lang::En);
        assert!(ok.ok && ok.fix.is_empty() && ok.detail == "Secret Service");
        let bad = keyring(&Err("no Secret Service on the bus".into()), Lang::En);
        assert!(!bad.ok && bad.fix.contains("gnome-keyring"), "{bad:?}");
        assert!(keyring(&Err("x".into()), Lang::ZhCn).fix.contains("钥匙串"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn tray_check_without_any_display_or_bus_says_what_to_do() {
        // A process with neither DISPLAY nor a session bus: both probes fail cleanly.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "checks::tests::tray_probe_child",
                "--nocapture",
                "--include-ignored",
            ])
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("TRAY-CHECK ok=false"), "{text}");
        assert!(text.contains("trayer"), "{text}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    #[ignore = "run by tray_check_without_any_display_or_bus_says_what_to_do in a clean environment"]
    fn tray_probe_child() {
        let c = tray(Lang::En);
        println!("TRAY-CHECK ok={} detail={} fix={}", c.ok, c.detail, c.fix);
    }
}
