//! A StatusNotifierItem tray host on a private session bus, as KDE Plasma and GNOME's
//! AppIndicator extension are: `org.kde.StatusNotifierWatcher` (items register with it)
//! plus a host name, so libappindicator exports the tray icon over D-Bus instead of
//! falling back to an XEmbed window.
//!
//! [`SniWatcher`] records every registered item; [`SniItem`] reads an item's
//! properties (`org.kde.StatusNotifierItem`) and its menu over `com.canonical.dbusmenu`
//! (`GetLayout`), and clicks menu entries through it (`Event … "clicked"`), the way a
//! panel does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedValue, Value};

use crate::desktop::SessionBus;
use crate::process::{HarnessError, Result};

const WATCHER_NAME: &str = "org.kde.StatusNotifierWatcher";
const WATCHER_PATH: &str = "/StatusNotifierWatcher";
const ITEM_IFACE: &str = "org.kde.StatusNotifierItem";
const MENU_IFACE: &str = "com.canonical.dbusmenu";

/// An item as it registered: the unique bus name of its connection and its object path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The unique name (`:1.42`) of the item's connection.
    pub bus_name: String,
    /// The item's object path (`/org/ayatana/NotificationItem/…`).
    pub path: String,
}

#[derive(Debug, Default)]
struct Registry {
    items: Vec<Registration>,
}

type Shared = Arc<(Mutex<Registry>, Condvar)>;

/// The D-Bus object, in a module of its own: the interface macro adds public helpers
/// (signal emitters, `*_changed`) that are not part of this crate's API.
mod watcher {
    use super::{Registration, Shared};
    use std::sync::PoisonError;
    use zbus::message::Header;
    use zbus::object_server::SignalEmitter;

    pub(super) struct Watcher {
        pub(super) shared: Shared,
    }

    #[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
    impl Watcher {
        /// libappindicator passes its object path; other items pass a bus name.
        async fn register_status_notifier_item(
            &self,
            service: String,
            #[zbus(header)] header: Header<'_>,
            #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
        ) -> zbus::fdo::Result<()> {
            let sender = header
                .sender()
                .map(|s| s.to_string())
                .ok_or_else(|| zbus::fdo::Error::InvalidArgs("no sender".into()))?;
            let reg = if service.starts_with('/') {
                Registration {
                    bus_name: sender,
                    path: service,
                }
            } else {
                Registration {
                    bus_name: service,
                    path: "/StatusNotifierItem".into(),
                }
            };
            let id = format!("{}{}", reg.bus_name, reg.path);
            {
                let (lock, cvar) = &*self.shared;
                lock.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .items
                    .push(reg);
                cvar.notify_all();
            }
            Self::status_notifier_item_registered(&emitter, &id).await?;
            Ok(())
        }

        /// Hosts register too; this watcher is itself the host.
        fn register_status_notifier_host(&self, _service: String) {}

        #[zbus(property)]
        fn registered_status_notifier_items(&self) -> Vec<String> {
            let (lock, _) = &*self.shared;
            lock.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .items
                .iter()
                .map(|r| format!("{}{}", r.bus_name, r.path))
                .collect()
        }

        #[zbus(property)]
        fn is_status_notifier_host_registered(&self) -> bool {
            true
        }

        #[zbus(property)]
        fn protocol_version(&self) -> i32 {
            0
        }

        /// Tells hosts about a new item.
        #[zbus(signal)]
        async fn status_notifier_item_registered(
            emitter: &SignalEmitter<'_>,
            service: &str,
        ) -> zbus::Result<()>;
    }
}

use watcher::Watcher;

/// The watcher and host, serving on a private bus until dropped.
pub struct SniWatcher {
    conn: Connection,
    shared: Shared,
}

impl std::fmt::Debug for SniWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniWatcher").finish_non_exhaustive()
    }
}

impl SniWatcher {
    /// Serves `org.kde.StatusNotifierWatcher` on `bus` and owns a host name. Start it
    /// before the tray app: libappindicator looks for the watcher when it starts.
    pub fn start(bus: &SessionBus) -> Result<Self> {
        let shared: Shared = Arc::new((Mutex::new(Registry::default()), Condvar::new()));
        let conn = bus.connect()?;
        conn.object_server().at(
            WATCHER_PATH,
            Watcher {
                shared: Arc::clone(&shared),
            },
        )?;
        conn.request_name(WATCHER_NAME)?;
        conn.request_name(format!("org.kde.StatusNotifierHost-{}", std::process::id()))?;
        Ok(SniWatcher { conn, shared })
    }

    /// Every registration so far, oldest first.
    pub fn registrations(&self) -> Vec<Registration> {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .items
            .clone()
    }

    /// Waits for the first item to register.
    pub fn wait_for_item(&self, timeout: Duration) -> Result<SniItem> {
        let start = Instant::now();
        let deadline = start + timeout;
        let (lock, cvar) = &*self.shared;
        let mut reg = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(first) = reg.items.first() {
                taskbell_testkit::note_if_slow("a StatusNotifierItem", start.elapsed());
                return Ok(SniItem {
                    conn: self.conn.clone(),
                    reg: first.clone(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HarnessError::Timeout {
                    what: "a StatusNotifierItem to register with the watcher".into(),
                    after: timeout,
                });
            }
            reg = cvar
                .wait_timeout(reg, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The properties a panel reads off an item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemProps {
    /// `Id`.
    pub id: String,
    /// `Title`: what panels show as the item's name.
    pub title: String,
    /// `Status`: Passive, Active or NeedsAttention.
    pub status: String,
    /// `IconName` (libappindicator: a file name without extension).
    pub icon_name: String,
    /// `IconThemePath`: where `IconName` is looked up first.
    pub icon_theme_path: String,
    /// `Menu`: the dbusmenu object path.
    pub menu: String,
    /// `XAyatanaLabel`, the text libappindicator shows beside the icon, if any.
    pub label: String,
}

impl ItemProps {
    /// The icon file the item points at (`IconThemePath/IconName.png`), when it is a file.
    pub fn icon_file(&self) -> Option<PathBuf> {
        let dir = PathBuf::from(&self.icon_theme_path);
        let exact = dir.join(&self.icon_name);
        if exact.is_file() {
            return Some(exact);
        }
        let png = dir.join(format!("{}.png", self.icon_name));
        png.is_file().then_some(png)
    }
}

/// One entry of an item's menu, with its submenu.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MenuEntry {
    /// The dbusmenu id, to click it with [`SniItem::click`].
    pub id: i32,
    /// The label with GTK's mnemonic underscores removed.
    pub label: String,
    /// `enabled` (absent means true).
    pub enabled: bool,
    /// `visible` (absent means true).
    pub visible: bool,
    /// `type`: "standard" or "separator".
    pub kind: String,
    /// The submenu, if any.
    pub children: Vec<MenuEntry>,
}

impl MenuEntry {
    /// This entry and every entry under it, depth first.
    pub fn flatten(&self) -> Vec<&MenuEntry> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.flatten());
        }
        out
    }
}

/// A registered item, read and driven over D-Bus.
#[derive(Debug, Clone)]
pub struct SniItem {
    conn: Connection,
    reg: Registration,
}

fn dbus_err(what: &str, e: impl std::fmt::Display) -> HarnessError {
    HarnessError::Dbus(format!("{what}: {e}"))
}

fn string_prop(props: &HashMap<String, OwnedValue>, name: &str) -> String {
    props
        .get(name)
        .and_then(|v| match &**v {
            Value::Str(s) => Some(s.to_string()),
            Value::ObjectPath(p) => Some(p.to_string()),
            _ => None,
        })
        .unwrap_or_default()
}

impl SniItem {
    /// Where the item lives.
    pub fn registration(&self) -> &Registration {
        &self.reg
    }

    /// The largest `IconPixmap` (width, height, ARGB32 in network byte order), if any.
    pub fn icon_pixmap(&self) -> Result<Option<(i32, i32, Vec<u8>)>> {
        let proxy = zbus::blocking::Proxy::new_owned(
            self.conn.clone(),
            self.reg.bus_name.clone(),
            self.reg.path.clone(),
            ITEM_IFACE,
        )?;
        let icons: Vec<(i32, i32, Vec<u8>)> = proxy.get_property("IconPixmap")?;
        Ok(icons
            .into_iter()
            .max_by_key(|(w, h, _)| i64::from(*w) * i64::from(*h)))
    }

    /// Reads every `org.kde.StatusNotifierItem` property.
    pub fn props(&self) -> Result<ItemProps> {
        let proxy = zbus::blocking::fdo::PropertiesProxy::builder(&self.conn)
            .destination(self.reg.bus_name.as_str())?
            .path(self.reg.path.as_str())?
            .build()?;
        let iface = zbus::names::InterfaceName::try_from(ITEM_IFACE)
            .map_err(|e| dbus_err("interface name", e))?;
        let all = proxy.get_all(iface)?;
        Ok(ItemProps {
            id: string_prop(&all, "Id"),
            title: string_prop(&all, "Title"),
            status: string_prop(&all, "Status"),
            icon_name: string_prop(&all, "IconName"),
            icon_theme_path: string_prop(&all, "IconThemePath"),
            menu: string_prop(&all, "Menu"),
            label: string_prop(&all, "XAyatanaLabel"),
        })
    }

    fn menu_proxy(&self) -> Result<zbus::blocking::Proxy<'static>> {
        let path = self.props()?.menu;
        if path.is_empty() || path == "/" {
            return Err(HarnessError::Dbus("the item exports no menu".into()));
        }
        Ok(zbus::blocking::Proxy::new_owned(
            self.conn.clone(),
            self.reg.bus_name.clone(),
            path,
            MENU_IFACE,
        )?)
    }

    /// The whole menu (`AboutToShow` then `GetLayout` of the root, all levels).
    pub fn menu(&self) -> Result<MenuEntry> {
        let proxy = self.menu_proxy()?;
        // Some servers build submenus lazily; a panel says it is about to show them.
        let _: std::result::Result<bool, _> = proxy.call("AboutToShow", &(0i32,));
        let (_revision, (id, props, children)): (u32, Node) =
            proxy.call("GetLayout", &(0i32, -1i32, Vec::<String>::new()))?;
        entry(id, props, children)
    }

    /// Clicks entry `id` as a panel does (`Event(id, "clicked", 0, now)`).
    pub fn click(&self, id: i32) -> Result<()> {
        let proxy = self.menu_proxy()?;
        let stamp = u32::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
                & 0xffff_ffff,
        )
        .unwrap_or(0);
        let () = proxy.call("Event", &(id, "clicked", Value::from(0i32), stamp))?;
        Ok(())
    }

    /// Finds the first entry whose label satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&MenuEntry) -> bool) -> Result<MenuEntry> {
        let root = self.menu()?;
        root.flatten()
            .into_iter()
            .find(|e| pred(e))
            .cloned()
            .ok_or_else(|| HarnessError::Dbus(format!("no such menu entry in {root:#?}")))
    }
}

/// One `(ia{sv}av)` layout node: id, properties, children (each a variant of a node).
type Node = (i32, HashMap<String, OwnedValue>, Vec<OwnedValue>);

fn entry(
    id: i32,
    props: HashMap<String, OwnedValue>,
    children: Vec<OwnedValue>,
) -> Result<MenuEntry> {
    let bool_prop = |name: &str| {
        props
            .get(name)
            .map(|v| bool::try_from(&**v).unwrap_or(true))
            .unwrap_or(true)
    };
    let kind = string_prop(&props, "type");
    let mut out = MenuEntry {
        id,
        label: string_prop(&props, "label").replace('_', ""),
        enabled: bool_prop("enabled"),
        visible: bool_prop("visible"),
        kind: if kind.is_empty() {
            "standard".into()
        } else {
            kind
        },
        children: Vec::new(),
    };
    for child in children {
        out.children.push(child_entry(&child)?);
    }
    Ok(out)
}

fn child_entry(value: &Value<'_>) -> Result<MenuEntry> {
    match value {
        Value::Value(inner) => child_entry(inner),
        Value::Structure(_) => {
            let Value::Structure(s) = value
                .try_clone()
                .map_err(|e| dbus_err("a dbusmenu node", e))?
            else {
                return Err(HarnessError::Dbus("a dbusmenu node changed shape".into()));
            };
            let node: Node =
                Node::try_from(s).map_err(|e| dbus_err("a dbusmenu node is not (ia{sv}av)", e))?;
            entry(node.0, node.1, node.2)
        }
        other => Err(HarnessError::Dbus(format!(
            "a dbusmenu child is not a node: {other:?}"
        ))),
    }
}
