// A stub of the Tauri bridge for ui/ tests: stands in for window.__TAURI_INTERNALS__ and
// for the Rust commands, with an in-memory backend seeded from fixtures/ (whose shapes a
// Rust test checks against the real types). Injected before any page script runs.
// window.__STUB_CONFIG__ = { lang, history, settings, status, diagnostics, errors, persist?,
// shownKeys? } is set first (shownKeys: the keys a folded toast asked the center to show).
(() => {
  const cfg = window.__STUB_CONFIG__;
  window.__TASKBELL_LANG__ = cfg.lang;
  const calls = [];
  const callbacks = new Map();
  const listeners = new Map();
  let nextId = 1;
  const clone = (v) => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
  // Kept in sessionStorage so a reload sees what the "app" saved, as the real one would.
  const saved = sessionStorage.getItem("__stub_db");
  const db = saved
    ? JSON.parse(saved)
    : {
        history: clone(cfg.history),
        settings: clone(cfg.settings),
        status: clone(cfg.status),
        diagnostics: clone(cfg.diagnostics),
        shownKeys: clone(cfg.shownKeys ?? null),
      };
  // cfg.persist === false (the 50,000-row test) skips it: megabytes per call, over the quota.
  const persist = () => {
    if (cfg.persist === false) return;
    try {
      sessionStorage.setItem("__stub_db", JSON.stringify(db));
    } catch {
      /* too big for sessionStorage: a reload starts from the fixtures */
    }
  };
  const unread = () => db.history.filter((n) => !n.read).length;
  const handlers = {
    get_status: () => db.status,
    get_settings: () => db.settings,
    get_diagnostics: () => db.diagnostics,
    // Newest first, `offset`/`limit` as the core's history query (no clamp here).
    list_history: ({ filter }) => {
      const sorted = [...db.history].sort((a, b) => b.timestamp_ms - a.timestamp_ms);
      const offset = (filter && filter.offset) || 0;
      const limit = filter && filter.limit != null ? filter.limit : 200;
      return sorted.slice(offset, offset + limit);
    },
    mark_read: ({ keys }) => {
      for (const n of db.history) if (keys.includes(n.key)) n.read = true;
      return unread();
    },
    mark_all_read: () => {
      for (const n of db.history) n.read = true;
      return 0;
    },
    open_notification: ({ key }) => {
      const n = db.history.find((x) => x.key === key);
      if (n) n.read = true;
      return null;
    },
    save_settings: ({ settings }) => {
      if (settings.heartbeat_interval_secs > 300) throw cfg.errors.invalid_heartbeat;
      if (/\s/.test(settings.server)) throw cfg.errors.invalid_server;
      // The app's refusal of a sound name (core config rules), as it names the field.
      const bad = (settings.kinds || []).find((k) => k.sound != null && /\s/.test(k.sound));
      if (bad) throw { ...cfg.errors.invalid_sound, field: `kinds.${bad.kind}.sound` };
      db.settings = clone(settings);
      return db.settings;
    },
    sign_in: ({ server, username, password }) => {
      if (server.includes("unreachable")) throw cfg.errors.unreachable;
      if (server.includes("self-signed")) throw cfg.errors.tls;
      if (password !== "annotate-123") throw cfg.errors.wrong_password;
      return { username, display_name: "张三", role: "annotator" };
    },
    // The project rules live in the settings (config.toml's [projects."ID"]).
    get_project_policies: () => db.settings.projects,
    set_project_policy: ({ project, policy }) => {
      const rest = db.settings.projects.filter((r) => r.project !== project);
      db.settings.projects = policy == null ? rest : [...rest, { project, policy }].sort((a, b) => (a.project < b.project ? -1 : 1));
      return db.settings.projects;
    },
    take_shown_keys: () => {
      const keys = db.shownKeys;
      db.shownKeys = null;
      return keys;
    },
    send_test_notification: () => null,
    reconnect_now: () => null,
    open_window: () => null,
    close_window: () => null,
  };
  window.__TAURI_INTERNALS__ = {
    transformCallback(fn) {
      const id = nextId++;
      callbacks.set(id, fn);
      return id;
    },
    async invoke(cmd, args = {}) {
      calls.push({ cmd, args: clone(args) });
      if (cmd === "plugin:event|listen") {
        if (!listeners.has(args.event)) listeners.set(args.event, []);
        listeners.get(args.event).push(args.handler);
        return nextId++;
      }
      if (cmd === "plugin:event|unlisten") return null;
      const h = handlers[cmd];
      if (!h) throw { kind: "local", message: "no such command: " + cmd, field: null };
      performance.mark("stub:" + cmd);
      // The JSON round trip stands for the IPC's serialisation.
      const out = clone(h(clone(args)));
      persist();
      performance.mark("stub:" + cmd + ":done");
      return out;
    },
  };
  window.__stub = {
    calls,
    db,
    emit(event, payload) {
      for (const id of listeners.get(event) || []) callbacks.get(id)({ event, id: 0, payload: clone(payload) });
    },
    listening: (event) => (listeners.get(event) || []).length,
  };
  performance.mark("stub:ready");
})();
