// The sign-in window: checks the form, calls `sign_in`, shows errors inline in plain words.
import { invoke } from "./tauri.js";
import { t, translate, errorText } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const FIELDS = ["server", "username", "password"];

/** Client-side checks; returns {field, key} for the first problem, or null. */
export function check(server, username, password) {
  if (!server.trim()) return { field: "server", key: "err.empty_server" };
  let url;
  try {
    url = new URL(server.trim());
  } catch {
    return { field: "server", key: "err.bad_url" };
  }
  if (!["http:", "https:"].includes(url.protocol) || !url.hostname) return { field: "server", key: "err.bad_url" };
  if (!username.trim()) return { field: "username", key: "err.empty_username" };
  if (!password) return { field: "password", key: "err.empty_password" };
  return null;
}

function clearErrors() {
  $("error").hidden = true;
  $("ok").hidden = true;
  for (const f of FIELDS) {
    $(f).removeAttribute("aria-invalid");
    $(f + "-error").hidden = true;
  }
}

function showError(text, field) {
  $("error").textContent = text;
  $("error").hidden = false;
  if (field && FIELDS.includes(field)) {
    $(field).setAttribute("aria-invalid", "true");
    $(field + "-error").textContent = text;
    $(field + "-error").hidden = false;
    $(field).focus();
  }
}

async function submit(ev) {
  ev.preventDefault();
  clearErrors();
  const server = $("server").value;
  const username = $("username").value;
  const password = $("password").value;
  const problem = check(server, username, password);
  if (problem) return showError(t(problem.key), problem.field);
  const button = $("submit");
  button.disabled = true;
  button.textContent = t("login.busy");
  try {
    const user = await invoke("sign_in", { server: server.trim(), username: username.trim(), password, remember: $("remember").checked });
    $("password").value = "";
    $("ok").textContent = t("login.ok", { name: user.display_name || user.username });
    $("ok").hidden = false;
  } catch (err) {
    const field = err && err.field ? err.field : err && err.kind === "wrong_password" ? "password" : err && ["bad_url", "unreachable", "tls"].includes(err.kind) ? "server" : null;
    showError(errorText(err), field);
  } finally {
    button.disabled = false;
    button.textContent = t("login.submit");
  }
}

async function init() {
  translate();
  $("login").addEventListener("submit", submit);
  try {
    const s = await invoke("get_settings");
    if (s && s.server) $("server").value = s.server;
  } catch {
    /* no settings yet: empty form */
  }
  ($("server").value ? $("username") : $("server")).focus();
  document.body.dataset.ready = "true";
}

init();
