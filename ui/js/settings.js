// The settings window: loads the settings, checks them, saves them.
import { invoke } from "./tauri.js";
import { t, translate, errorText } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let loaded = null;

/** Reads the form into the shape `save_settings` takes (unknown fields kept from `base`). */
export function readForm(base) {
  return {
    ...base,
    server: $("server").value.trim(),
    heartbeat_interval_secs: Number($("heartbeat").value),
    quiet_hours_enabled: $("quiet").checked,
    quiet_start: $("quiet-start").value,
    quiet_end: $("quiet-end").value,
    urgent_bypass: $("urgent").checked,
    language: $("language").value,
    autostart: $("autostart").checked,
    sound: $("sound").checked,
  };
}

function fill(s) {
  $("server").value = s.server || "";
  $("heartbeat").value = s.heartbeat_interval_secs;
  $("quiet").checked = !!s.quiet_hours_enabled;
  $("quiet-start").value = s.quiet_start || "22:00";
  $("quiet-end").value = s.quiet_end || "08:00";
  $("urgent").checked = !!s.urgent_bypass;
  $("language").value = s.language || "system";
  $("autostart").checked = !!s.autostart;
  $("sound").checked = !!s.sound;
  $("quiet-times").hidden = !s.quiet_hours_enabled;
}

/** Client-side checks; returns an i18n key or null. */
export function check(s) {
  if (!Number.isInteger(s.heartbeat_interval_secs) || s.heartbeat_interval_secs < 5 || s.heartbeat_interval_secs > 300) {
    return "settings.err_heartbeat";
  }
  const hhmm = /^([01]\d|2[0-3]):[0-5]\d$/;
  if (s.quiet_hours_enabled && (!hhmm.test(s.quiet_start) || !hhmm.test(s.quiet_end))) return "settings.err_time";
  return null;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

async function save(ev) {
  ev.preventDefault();
  $("error").hidden = true;
  $("ok").hidden = true;
  const s = readForm(loaded || {});
  const problem = check(s);
  if (problem) return showError(t(problem));
  $("save").disabled = true;
  try {
    loaded = await invoke("save_settings", { settings: s });
    fill(loaded);
    $("ok").textContent = t("settings.saved");
    $("ok").hidden = false;
  } catch (err) {
    showError(errorText(err));
  } finally {
    $("save").disabled = false;
  }
}

async function init() {
  translate();
  $("settings").addEventListener("submit", save);
  $("quiet").addEventListener("change", (e) => ($("quiet-times").hidden = !e.target.checked));
  $("open-diagnostics").addEventListener("click", () => invoke("open_window", { window: "diagnostics" }).catch((e) => showError(errorText(e))));
  try {
    loaded = await invoke("get_settings");
    fill(loaded);
  } catch (err) {
    showError(errorText(err));
  }
  document.body.dataset.ready = "true";
}

init();
