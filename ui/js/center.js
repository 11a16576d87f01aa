// The notification center: history newest first, unread highlighted, filter by kind,
// mark one or all read, click opens the task; new notifications appear live.
import { invoke, listen, EVENTS } from "./tauri.js";
import { t, translate, stateText, errorText, lang } from "./i18n.js";
import { applyFilter, markRead, sortNewestFirst, timeText, upsert } from "./center-model.js";

const $ = (id) => document.getElementById(id);
let items = [];
let group = "";
let unreadOnly = false;

function showError(err) {
  $("error").textContent = errorText(err);
  $("error").hidden = false;
}

function render() {
  const list = $("list");
  list.replaceChildren();
  const shown = applyFilter(items, group, unreadOnly);
  for (const n of shown) {
    const li = document.createElement("li");
    li.dataset.key = n.key;
    li.dataset.group = n.group;
    li.className = [n.read ? "read" : "unread", n.has_link ? "link" : "", "priority-" + n.priority].filter(Boolean).join(" ");
    const title = document.createElement("div");
    title.className = "title";
    title.textContent = n.title;
    const tag = document.createElement("span");
    tag.className = "tag";
    tag.textContent = t("filter." + n.group);
    const content = document.createElement("div");
    content.className = "content";
    content.textContent = n.content;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = timeText(n.timestamp_ms, lang());
    li.append(title, tag, content, meta);
    if (!n.read) {
      const b = document.createElement("button");
      b.className = "mark-one";
      b.textContent = t("center.mark_one");
      b.addEventListener("click", (ev) => {
        ev.stopPropagation();
        markOne(n.key);
      });
      li.append(b);
    }
    if (n.has_link) li.addEventListener("click", () => openOne(n.key));
    list.append(li);
  }
  $("empty").hidden = shown.length > 0;
  $("unread").textContent = t("center.unread", { n: items.filter((n) => !n.read).length });
}

async function markOne(key) {
  try {
    await invoke("mark_read", { keys: [key] });
    items = markRead(items, [key]);
    render();
  } catch (err) {
    showError(err);
  }
}

async function openOne(key) {
  try {
    await invoke("open_notification", { key });
    items = markRead(items, [key]);
    render();
  } catch (err) {
    showError(err);
  }
}

async function load() {
  try {
    items = sortNewestFirst(await invoke("list_history", { filter: { limit: 500 } }));
    $("error").hidden = true;
  } catch (err) {
    showError(err);
  }
  render();
}

function setGroup(g) {
  group = g;
  for (const b of $("filters").querySelectorAll("button[data-group]")) {
    b.setAttribute("aria-pressed", String(b.dataset.group === g));
  }
  render();
}

async function init() {
  translate();
  for (const b of $("filters").querySelectorAll("button[data-group]")) {
    b.addEventListener("click", () => setGroup(b.dataset.group));
  }
  $("unread-only").addEventListener("change", (e) => {
    unreadOnly = e.target.checked;
    render();
  });
  $("mark-all").addEventListener("click", async () => {
    try {
      await invoke("mark_all_read");
      items = markRead(items, null);
      render();
    } catch (err) {
      showError(err);
    }
  });
  await listen(EVENTS.notification, (n) => {
    items = upsert(items, n);
    render();
  });
  await listen(EVENTS.history, () => load());
  await listen(EVENTS.status, (s) => ($("state").textContent = stateText(s)));
  try {
    $("state").textContent = stateText(await invoke("get_status"));
  } catch {
    /* shown on the next status event */
  }
  await load();
  document.body.dataset.ready = "true";
}

init();
