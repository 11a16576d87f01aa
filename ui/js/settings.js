// The settings window: loads the settings, checks them, saves them. The toast policy and
// sound per notification kind and the per-project policies are the config's `[kinds.NAME]`
// and `[projects."ID"]`; the app checks them with the CLI's rules and names a refused field.
import { invoke } from "./tauri.js";
import { t, translate, errorText } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let loaded = null;
const POLICIES = ["show", "store", "mute"];

/** A <select> of the three policies with `value` chosen. */
function policySelect(value, label) {
  const sel = document.createElement("select");
  sel.className = "policy";
  sel.setAttribute("aria-label", label);
  for (const p of POLICIES) {
    const o = document.createElement("option");
    o.value = p;
    o.textContent = t("policy." + p);
    sel.append(o);
  }
  sel.value = value || "show";
  return sel;
}

/** The kind's name for people ("kind.task_reviewed"), else its wire name. */
export function kindLabel(kind) {
  const key = "kind." + kind;
  const text = t(key);
  return text === key ? kind : text;
}

function renderKinds(kinds) {
  const rows = (kinds || []).map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.kind = r.kind;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = kindLabel(r.kind);
    const policy = document.createElement("td");
    policy.append(policySelect(r.policy, t("settings.policy") + ": " + kindLabel(r.kind)));
    const sound = document.createElement("td");
    const input = document.createElement("input");
    input.type = "text";
    input.className = "sound";
    input.setAttribute("list", "sound-names");
    input.autocomplete = "off";
    input.spellcheck = false;
    input.dataset.field = "kinds." + r.kind + ".sound";
    input.placeholder = t("settings.sound_default");
    input.setAttribute("aria-label", t("settings.kind_sound") + ": " + kindLabel(r.kind));
    input.value = r.sound || "";
    sound.append(input);
    tr.append(th, policy, sound);
    return tr;
  });
  $("kinds").tBodies[0].replaceChildren(...rows);
}

function projectRow(r) {
  const li = document.createElement("li");
  li.dataset.project = r.project;
  const name = document.createElement("span");
  name.className = "project";
  name.textContent = r.project;
  name.title = r.project;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "remove";
  remove.textContent = t("settings.project_remove");
  remove.setAttribute("aria-label", t("settings.project_remove") + ": " + r.project);
  remove.addEventListener("click", () => {
    li.remove();
    $("projects-empty").hidden = $("projects").children.length > 0;
  });
  li.append(name, policySelect(r.policy, t("settings.policy") + ": " + r.project), remove);
  return li;
}

function renderProjects(projects) {
  $("projects").replaceChildren(...(projects || []).map(projectRow));
  $("projects-empty").hidden = $("projects").children.length > 0;
}

/** Adds the typed project to the list (or changes its policy when it is listed). */
function addProject() {
  const input = $("project-new");
  const project = input.value;
  if (!project) return;
  const policy = $("project-new-policy").value;
  const have = [...$("projects").children].find((li) => li.dataset.project === project);
  if (have) have.querySelector("select").value = policy;
  else $("projects").append(projectRow({ project, policy }));
  $("projects-empty").hidden = true;
  input.value = "";
  input.removeAttribute("aria-invalid");
}

function readKinds() {
  return [...$("kinds").tBodies[0].rows].map((tr) => ({
    kind: tr.dataset.kind,
    policy: tr.querySelector("select").value,
    sound: tr.querySelector("input").value.trim() || null,
  }));
}

function readProjects() {
  return [...$("projects").children].map((li) => ({
    project: li.dataset.project,
    policy: li.querySelector("select").value,
  }));
}

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
    kinds: readKinds(),
    projects: readProjects(),
  };
}

function fill(s) {
  $("server").value = s.server || "";
  $("heartbeat").value = s.heartbeat_interval_secs;
  $("heartbeat").min = heartbeatRange(s).min;
  $("heartbeat").max = heartbeatRange(s).max;
  $("quiet").checked = !!s.quiet_hours_enabled;
  $("quiet-start").value = s.quiet_start || "22:00";
  $("quiet-end").value = s.quiet_end || "08:00";
  $("urgent").checked = !!s.urgent_bypass;
  $("language").value = s.language || "system";
  $("autostart").checked = !!s.autostart;
  $("sound").checked = !!s.sound;
  $("quiet-times").hidden = !s.quiet_hours_enabled;
  renderKinds(s.kinds);
  renderProjects(s.projects);
}

/** The heartbeat's allowed range, as the app sends it (the core's one range). */
function heartbeatRange(s) {
  const r = s && Array.isArray(s.heartbeat_secs_range) ? s.heartbeat_secs_range : [5, 3600];
  return { min: r[0], max: r[1] };
}

/** Client-side checks; returns an i18n key (with its values) or null. */
export function check(s) {
  const { min, max } = heartbeatRange(s);
  if (!Number.isInteger(s.heartbeat_interval_secs) || s.heartbeat_interval_secs < min || s.heartbeat_interval_secs > max) {
    return { key: "settings.err_heartbeat", vars: { min, max } };
  }
  const hhmm = /^([01]\d|2[0-3]):[0-5]\d$/;
  if (s.quiet_hours_enabled && (!hhmm.test(s.quiet_start) || !hhmm.test(s.quiet_end))) return { key: "settings.err_time" };
  return null;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

/** The words for an error from the app: a refused rule by its field, else as it came. */
export function saveErrorText(err) {
  const field = (err && err.field) || "";
  const sound = /^kinds\.(.+)\.sound$/.exec(field);
  if (sound) return t("settings.err_sound", { kind: kindLabel(sound[1]) });
  if (field === "projects") return t("settings.err_project");
  return errorText(err);
}

/** Marks the input the app named (`data-field`, or the id for the plain fields) and focuses it. */
function markField(field) {
  if (!field) return;
  const ids = { server: "server", heartbeat_interval_secs: "heartbeat", quiet_start: "quiet-start" };
  const el = [...document.querySelectorAll("[data-field]")].find((e) => e.dataset.field === field) || (ids[field] && $(ids[field]));
  if (!el) return;
  el.setAttribute("aria-invalid", "true");
  el.focus();
}

async function save(ev) {
  ev.preventDefault();
  $("error").hidden = true;
  $("ok").hidden = true;
  for (const el of document.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const s = readForm(loaded || {});
  const problem = check(s);
  if (problem) return showError(t(problem.key, problem.vars));
  $("save").disabled = true;
  try {
    loaded = await invoke("save_settings", { settings: s });
    fill(loaded);
    $("ok").textContent = t("settings.saved");
    $("ok").hidden = false;
  } catch (err) {
    showError(saveErrorText(err));
    markField(err && err.field);
  } finally {
    $("save").disabled = false;
  }
}

async function init() {
  translate();
  $("settings").addEventListener("submit", save);
  $("quiet").addEventListener("change", (e) => ($("quiet-times").hidden = !e.target.checked));
  $("project-new-policy").replaceWith(Object.assign(policySelect("mute", t("settings.policy")), { id: "project-new-policy" }));
  $("project-add").addEventListener("click", addProject);
  $("project-new").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addProject();
    }
  });
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
