// The one door to the Rust side. Uses the IPC that Tauri injects into every page
// (window.__TAURI_INTERNALS__); tests replace that object with a stub. No bundler, no npm.

function internals() {
  const t = window.__TAURI_INTERNALS__;
  if (!t || typeof t.invoke !== "function") {
    throw new Error("TaskBell's window bridge is missing (page opened outside the app?)");
  }
  return t;
}

/** Calls a Rust command. Rejects with the command's error object ({kind, message, field}). */
export function invoke(cmd, args = {}) {
  return internals().invoke(cmd, args);
}

/** Listens to an app event; returns a function that stops listening. */
export async function listen(event, handler) {
  const t = internals();
  const id = t.transformCallback((e) => handler(e.payload));
  const eventId = await t.invoke("plugin:event|listen", {
    event,
    target: { kind: "Any" },
    handler: id,
  });
  return () => t.invoke("plugin:event|unlisten", { event, eventId });
}

/** Event names (must match src-tauri/src/bridge.rs). */
export const EVENTS = {
  status: "taskbell://status",
  notification: "taskbell://notification",
  history: "taskbell://history",
  diagnostics: "taskbell://diagnostics",
  showKeys: "taskbell://show-keys",
};
