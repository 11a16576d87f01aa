// The notification center: the history newest first, grouped by day, searched as you
// type and filtered by kind, project, account (with several) and read state; per-row Open and Mark read;
// keyboard triage (↑↓ select, Enter open, M mark read, P mute the row's project, / search,
// Esc clear); "Mute project" per row (toggles; settings list the rule), and a filter by keys
// with a chip to clear it when a folded toast ("N new notifications") opened the center.
//
// It is a virtual list: only the rows in (and just around) the viewport are in the DOM,
// between two paddings that stand for the rows above and below. Every row has the same
// measured height (the first row of a day also holds the day's heading), so row offsets
// are a prefix sum and scrolling to any of 50,000 rows is a binary search. A live
// notification is put in place without rebuilding the DOM, the rows in view stay where
// they are, and only the new notification is announced (#announce), never the list.
import { invoke, listen, EVENTS } from "./tauri.js";
import { t, translate, errorText, lang } from "./i18n.js";
import {
  accountOf,
  accountsOf,
  clockText,
  dayGroups,
  dayLabel,
  filterItems,
  groupIndexAt,
  indexAt,
  isFilterEmpty,
  localDayStart,
  markRead,
  matchesFilter,
  merge,
  prepareSearch,
  projectOf,
  projectsOf,
  rowOffsets,
  sortNewestFirst,
  taskIdOf,
  timeText,
  upsert,
} from "./center-model.js";

const $ = (id) => document.getElementById(id);

/** Rows rendered beyond each edge of the viewport. */
const OVERSCAN = 8;
/** How much history the center asks for (the app may cap it). */
const HISTORY_LIMIT = 50000;
/** The first page, shown while the rest loads. */
const FIRST_PAGE = 200;
/** Live notifications arriving within this many ms are announced together. */
const ANNOUNCE_MS = 300;

const state = {
  items: [], // everything, newest first
  view: [], // what passes the filter, newest first
  groups: [], // day groups of `view`
  offsets: new Float64Array(1),
  filter: { group: "", project: "", account: "", read: "all", query: "", keys: null },
  muted: new Set(), // projects whose rule is "mute"
  selectedKey: null,
  selIndex: -1, // index of selectedKey in view (-1: none / not shown)
  rowH: 0,
  headH: 0,
  today: null, // local midnight the day labels were made for
  projects: [],
  accounts: [], // the accounts of the rows; empty with a single account
  unread: 0,
};
/** key → <li>, the rows in the DOM now. */
const rendered = new Map();
/** day (local midnight) → heading text, for `state.today`. */
const dayLabels = new Map();

let vp; // the scroll container
let list; // the <ul>
let search;
let announceTimer = 0;
let pendingNew = [];

function showError(err) {
  $("error").textContent = errorText(err);
  $("error").hidden = false;
}

// ---- geometry -------------------------------------------------------------------------

function labelOf(day) {
  if (!dayLabels.has(day)) {
    dayLabels.set(day, dayLabel(day, Date.now(), lang(), {
      today: t("center.today"),
      yesterday: t("center.yesterday"),
      undated: t("center.undated"),
    }));
  }
  return dayLabels.get(day);
}

/** Measures a row and a day heading as they render now (fonts, zoom, width). */
function measure() {
  const probe = document.createElement("ul");
  probe.className = "list probe";
  probe.setAttribute("aria-hidden", "true");
  const sample = {
    key: "\u0000probe", kind: "task_reviewed", group: "reviews", title: "Probe 测试 Ág", content: "Probe 测试 Ág",
    priority: "urgent", timestamp_ms: Date.now(), read: false, has_link: true, task_id: "1", project: "Probe 测试",
  };
  const a = document.createElement("li");
  const b = document.createElement("li");
  fillRow(a, sample, "Probe 测试");
  fillRow(b, sample, null);
  a.className = "unread link first-of-day";
  b.className = "unread link";
  probe.append(a, b);
  vp.append(probe);
  const ha = a.getBoundingClientRect().height;
  const hb = b.getBoundingClientRect().height;
  probe.remove();
  const rowH = hb > 0 ? Math.ceil(hb) : 84;
  const headH = ha > hb ? Math.ceil(ha - hb) : 30;
  const changed = rowH !== state.rowH || headH !== state.headH;
  state.rowH = rowH;
  state.headH = headH;
  list.style.setProperty("--row-h", rowH + "px");
  list.style.setProperty("--head-h", headH + "px");
  return changed;
}

function relayout() {
  state.groups = dayGroups(state.view);
  state.offsets = rowOffsets(state.view.length, state.groups, state.rowH, state.headH);
  list.style.paddingTop = "0px";
  list.style.paddingBottom = state.offsets[state.view.length] + "px";
}

/** What is at the top of the viewport: {key, index, delta}, or null at the very top. */
function anchor() {
  if (!state.view.length || vp.scrollTop <= 0) return null;
  const y = Math.max(0, vp.scrollTop - list.offsetTop);
  const i = indexAt(state.offsets, y);
  return { key: state.view[i].key, index: i, delta: y - state.offsets[i] };
}

function restore(a) {
  if (!a || !state.view.length) return;
  let i = indexOfKey(a.key);
  if (i < 0) i = Math.min(a.index, state.view.length - 1);
  vp.scrollTop = list.offsetTop + state.offsets[i] + a.delta;
}

function indexOfKey(key) {
  if (key == null) return -1;
  return state.view.findIndex((n) => n.key === key);
}

// ---- rendering ------------------------------------------------------------------------

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

/** (Re)builds the inside of a row for notification `n`; `head` is its day heading or null. */
function fillRow(li, n, head) {
  li.dataset.key = n.key;
  li.dataset.group = n.group;
  const parts = [];
  if (head != null) {
    const h = el("div", "day", head);
    h.setAttribute("role", "heading");
    h.setAttribute("aria-level", "2");
    parts.push(h);
  }
  const card = el("div", "card");
  const line1 = el("div", "line1");
  const meta = el("span", "meta", clockText(n.timestamp_ms, lang()));
  meta.title = timeText(n.timestamp_ms, lang());
  line1.append(el("span", "title", n.title), meta);
  const content = el("div", "content", n.content);
  content.title = n.content;
  const chips = el("span", "chips");
  chips.append(el("span", "tag", t("filter." + n.group)));
  const account = accountOf(n);
  if (account) {
    const c = el("span", "chip account", account);
    c.title = t("center.account_label") + ": " + account;
    chips.append(c);
  }
  const project = projectOf(n);
  const muted = project !== "" && state.muted.has(project);
  if (project) {
    const c = el("span", muted ? "chip project muted" : "chip project", project);
    if (muted) c.title = t("center.muted_chip");
    chips.append(c);
  }
  const task = taskIdOf(n);
  if (task) chips.append(el("span", "chip task", t("center.task", { id: task })));
  const actions = el("span", "actions");
  if (n.has_link) {
    const b = el("button", "open-one", t("center.open"));
    b.type = "button";
    b.title = t("center.open_title");
    b.setAttribute("aria-label", t("center.open") + ": " + n.title);
    actions.append(b);
  }
  if (!n.read) {
    const b = el("button", "mark-one", t("center.mark_one"));
    b.type = "button";
    b.setAttribute("aria-label", t("center.mark_one") + ": " + n.title);
    actions.append(b);
  }
  if (project) {
    const label = t(muted ? "center.unmute_project" : "center.mute_project");
    const b = el("button", "mute-project", t(muted ? "center.unmute" : "center.mute"));
    b.type = "button";
    b.title = t(muted ? "center.unmute_title" : "center.mute_title");
    b.setAttribute("aria-pressed", String(muted));
    b.setAttribute("aria-label", label + ": " + project);
    actions.append(b);
  }
  const line3 = el("div", "line3");
  line3.append(chips, actions);
  card.append(line1, content, line3);
  parts.push(card);
  li.replaceChildren(...parts);
}

/** Brings row `li` up to date with view[i]; rebuilds its inside only when that changed. */
function updateRow(li, n, i) {
  const g = state.groups[groupIndexAt(state.groups, i)];
  const head = g.start === i ? labelOf(g.day) : null;
  if (li._item !== n || li._head !== head) {
    // A button inside that had focus (e.g. the Mark read just pressed) goes away with
    // the old content: keep the focus on the row.
    const focusInside = li !== document.activeElement && li.contains(document.activeElement);
    fillRow(li, n, head);
    li._item = n;
    li._head = head;
    if (focusInside) li.focus({ preventScroll: true });
  }
  const selected = n.key === state.selectedKey;
  const cls = [n.read ? "read" : "unread", n.has_link ? "link" : "", "priority-" + n.priority,
    head != null ? "first-of-day" : "", selected ? "selected" : ""].filter(Boolean).join(" ");
  if (li.className !== cls) li.className = cls;
  const pos = String(i + 1);
  if (li.getAttribute("aria-posinset") !== pos) li.setAttribute("aria-posinset", pos);
  const size = String(state.view.length);
  if (li.getAttribute("aria-setsize") !== size) li.setAttribute("aria-setsize", size);
  // Roving tab stop: the selected row (or the first row shown) is the list's one stop.
  const tabbable = selected || (state.selIndex < 0 && li === list.firstElementChild);
  li.tabIndex = tabbable ? 0 : -1;
  if (selected) li.setAttribute("aria-current", "true");
  else li.removeAttribute("aria-current");
  for (const b of li.querySelectorAll("button")) b.tabIndex = selected ? 0 : -1;
}

/** Renders the rows in view (plus overscan); reuses the rows already there. */
function renderWindow() {
  const { view, offsets } = state;
  const count = view.length;
  const listTop = list.offsetTop;
  const y0 = Math.max(0, vp.scrollTop - listTop);
  const y1 = y0 + vp.clientHeight;
  let start = 0;
  let end = 0;
  if (count) {
    start = Math.max(0, indexAt(offsets, y0) - OVERSCAN);
    end = Math.min(count, indexAt(offsets, y1) + 1 + OVERSCAN);
  }
  list.style.paddingTop = offsets[start] + "px";
  list.style.paddingBottom = offsets[count] - offsets[end] + "px";

  const wanted = new Set();
  for (let i = start; i < end; i++) wanted.add(view[i].key);
  let lostFocus = false;
  for (const [key, li] of rendered) {
    if (!wanted.has(key)) {
      if (li.contains(document.activeElement)) lostFocus = true;
      li.remove();
      rendered.delete(key);
    }
  }
  // The rows kept are already in order; new ones go in between.
  let cursor = list.firstElementChild;
  for (let i = start; i < end; i++) {
    const n = view[i];
    let li = rendered.get(n.key);
    if (!li) {
      li = document.createElement("li");
      rendered.set(n.key, li);
      list.insertBefore(li, cursor);
    } else if (li === cursor) {
      cursor = cursor.nextElementSibling;
    } else {
      list.insertBefore(li, cursor);
    }
    updateRow(li, n, i);
  }
  if (lostFocus) vp.focus({ preventScroll: true });
  renderSticky(y0);
}

/** The day of the topmost row, pinned while that day's own heading is scrolled away. */
function renderSticky(y0) {
  const sticky = $("day-sticky");
  if (!state.view.length) {
    sticky.hidden = true;
    return;
  }
  const i = indexAt(state.offsets, y0);
  const g = state.groups[groupIndexAt(state.groups, i)];
  const show = y0 > state.offsets[g.start] + 1;
  sticky.hidden = !show;
  if (show) {
    const text = labelOf(g.day);
    if (sticky.firstElementChild.textContent !== text) sticky.firstElementChild.textContent = text;
  }
}

function renderStatus() {
  $("unread").textContent = t("center.unread", { n: state.unread });
  $("count").textContent = isFilterEmpty(state.filter)
    ? ""
    : t("center.count", { shown: state.view.length, total: state.items.length });
  const empty = $("empty");
  empty.hidden = state.view.length > 0;
  empty.textContent = state.items.length ? t("center.no_match") : t("center.empty");
}

function renderProjects() {
  const sel = $("project");
  const current = state.filter.project;
  const opts = [sel.options[0]];
  const names = state.projects.includes(current) || !current ? state.projects : [...state.projects, current];
  for (const p of names) {
    const o = document.createElement("option");
    o.value = p;
    o.textContent = p;
    opts.push(o);
  }
  sel.replaceChildren(...opts);
  sel.value = current;
}

/** The account filter: shown only when the rows name accounts (several accounts). */
function renderAccounts() {
  const sel = $("account");
  const current = state.filter.account;
  const opts = [sel.options[0]];
  const names = state.accounts.includes(current) || !current ? state.accounts : [...state.accounts, current];
  for (const a of names) {
    const o = document.createElement("option");
    o.value = a;
    o.textContent = a;
    opts.push(o);
  }
  sel.replaceChildren(...opts);
  sel.value = current;
  sel.hidden = names.length === 0;
}

/**
 * Recomputes the filtered view and redraws. `mode`: "anchor" keeps the rows in view
 * where they are (data changed), "top" scrolls to the top (the filter changed).
 */
function refresh(mode = "anchor") {
  const a = mode === "anchor" ? anchor() : null;
  state.view = filterItems(state.items, state.filter);
  state.unread = countUnread(state.items);
  state.selIndex = indexOfKey(state.selectedKey);
  relayout();
  if (mode === "top") vp.scrollTop = 0;
  else restore(a);
  renderWindow();
  renderStatus();
}

function countUnread(items) {
  let n = 0;
  for (const x of items) if (!x.read) n++;
  return n;
}

// ---- selection ------------------------------------------------------------------------

/** Scrolls so that row i is fully visible (not under the pinned day label). */
function scrollToRow(i) {
  const top = list.offsetTop + state.offsets[i];
  const bottom = list.offsetTop + state.offsets[i + 1];
  const g = state.groups[groupIndexAt(state.groups, i)];
  const covered = g.start === i ? 0 : state.headH;
  if (top - covered < vp.scrollTop) vp.scrollTop = top - covered;
  else if (bottom > vp.scrollTop + vp.clientHeight) vp.scrollTop = bottom - vp.clientHeight;
}

function select(i, { scroll = true, focus = false } = {}) {
  if (i < 0 || i >= state.view.length) return;
  state.selectedKey = state.view[i].key;
  state.selIndex = i;
  if (scroll) scrollToRow(i);
  renderWindow();
  if (focus) {
    revealList();
    rendered.get(state.selectedKey)?.focus({ preventScroll: true });
  }
}

/** In a short window the header can hide the list: scroll the page so the list shows. */
function revealList() {
  const main = vp.parentElement;
  if (main.scrollHeight <= main.clientHeight) return;
  const box = vp.getBoundingClientRect();
  const outer = main.getBoundingClientRect();
  if (box.top < outer.top || box.bottom > outer.bottom) vp.scrollIntoView({ block: "nearest" });
}

function selectedItem() {
  return state.selIndex >= 0 ? state.view[state.selIndex] : null;
}

function move(key, focus) {
  const count = state.view.length;
  if (!count) return;
  const page = Math.max(1, Math.floor(vp.clientHeight / state.rowH) - 1);
  let i = state.selIndex;
  if (key === "Home") i = 0;
  else if (key === "End") i = count - 1;
  else if (i < 0) {
    // Nothing selected yet: start at the first row in view.
    i = indexAt(state.offsets, Math.max(0, vp.scrollTop - list.offsetTop));
  } else if (key === "ArrowDown") i += 1;
  else if (key === "ArrowUp") i -= 1;
  else if (key === "PageDown") i += page;
  else if (key === "PageUp") i -= page;
  select(Math.min(count - 1, Math.max(0, i)), { focus });
}

function focusList() {
  const li = state.selectedKey ? rendered.get(state.selectedKey) : list.firstElementChild;
  (li || vp).focus({ preventScroll: true });
}

// ---- actions --------------------------------------------------------------------------

/** Local effect of keys becoming read (null = all); keeps a selection in place. */
function applyRead(keys) {
  const before = state.selIndex;
  const hadFocus = vp.contains(document.activeElement);
  state.items = markRead(state.items, keys);
  refresh("anchor");
  // Under "unread only" the row leaves the list: select the one that took its place.
  if (state.selectedKey && state.selIndex < 0 && before >= 0 && state.view.length) {
    select(Math.min(before, state.view.length - 1), { focus: hadFocus });
  }
}

async function markOne(key) {
  try {
    await invoke("mark_read", { keys: [key] });
    applyRead([key]);
  } catch (err) {
    showError(err);
  }
}

async function openOne(key) {
  try {
    await invoke("open_notification", { key });
    applyRead([key]);
  } catch (err) {
    showError(err);
  }
}

/** The projects muted by their rules ([{project, policy}] from the app). */
function setRules(rules) {
  state.muted = new Set((rules || []).filter((r) => r.policy === "mute").map((r) => r.project));
  // The rows' buttons and chips follow: rebuild the rows in view.
  for (const li of rendered.values()) li._item = null;
  renderWindow();
}

/** Mutes the project, or unmutes it when it is muted (the same control undoes it). */
async function toggleMute(project) {
  const muted = state.muted.has(project);
  try {
    setRules(await invoke("set_project_policy", { project, policy: muted ? null : "mute" }));
    $("announce").textContent = t(muted ? "center.unmuted" : "center.muted", { project });
  } catch (err) {
    showError(err);
  }
}

/**
 * Shows just the notifications of `keys` (a folded toast's), with the chip that clears it;
 * the other filters are cleared so that none of them hides one.
 */
function showKeys(keys) {
  search.value = "";
  $("project").value = "";
  $("account").value = "";
  $("unread-only").checked = false;
  for (const b of $("filters").querySelectorAll("button[data-group]")) {
    b.setAttribute("aria-pressed", String(b.dataset.group === ""));
  }
  $("keys-filter-text").textContent = t("center.keys_filter", { n: keys.length });
  $("keys-filter").hidden = false;
  setFilter({ group: "", project: "", account: "", read: "all", query: "", keys: new Set(keys) });
}

function clearKeys() {
  $("keys-filter").hidden = true;
  setFilter({ keys: null });
}

/** Takes the keys a folded toast asked the app to show, if any are waiting. */
async function takeShownKeys() {
  try {
    const keys = await invoke("take_shown_keys");
    if (keys && keys.length) showKeys(keys);
  } catch (err) {
    showError(err);
  }
}

async function markAll() {
  try {
    await invoke("mark_all_read");
    applyRead(null);
  } catch (err) {
    showError(err);
  }
}

// ---- live updates ---------------------------------------------------------------------

/** A live notification: put in place; rows in view and the selection stay put. */
function onLive(n) {
  if (!n || n.key == null) return;
  const items = upsert(state.items, n);
  if (items === state.items) return; // already there
  const a = anchor();
  const viewWasAll = state.view === state.items;
  state.items = items;
  if (!n.read) state.unread += 1;
  if (viewWasAll) state.view = items;
  else if (matchesFilter(n, state.filter)) state.view = upsert(state.view, n);
  state.selIndex = indexOfKey(state.selectedKey);
  relayout();
  restore(a);
  renderWindow();
  renderStatus();
  const p = projectOf(n);
  if (p && !state.projects.includes(p)) {
    state.projects = [...state.projects, p].sort((x, y) => x.localeCompare(y));
    renderProjects();
  }
  const acc = accountOf(n);
  if (acc && !state.accounts.includes(acc)) {
    state.accounts = [...state.accounts, acc].sort((x, y) => x.localeCompare(y));
    renderAccounts();
  }
  announce(n);
}

/** Tells screen readers about new notifications (only those, a burst in one sentence). */
function announce(n) {
  pendingNew.push(n);
  clearTimeout(announceTimer);
  announceTimer = setTimeout(() => {
    const latest = pendingNew[pendingNew.length - 1];
    const text = pendingNew.length === 1
      ? t("center.new", { title: latest.title })
      : t("center.new_many", { n: pendingNew.length, title: latest.title });
    pendingNew = [];
    $("announce").textContent = text;
  }, ANNOUNCE_MS);
}

let loadSeq = 0;

async function fetchHistory(filter) {
  return (await invoke("list_history", { filter })) || [];
}

function setItems(items, mode) {
  state.items = items;
  state.projects = projectsOf(items);
  state.accounts = accountsOf(items);
  $("error").hidden = true;
  renderProjects();
  renderAccounts();
  refresh(mode);
}

/**
 * The whole history at once (after read states changed elsewhere); what is in view and
 * the selection stay.
 */
async function reload() {
  const seq = ++loadSeq;
  try {
    const items = await fetchHistory({ limit: HISTORY_LIMIT });
    if (seq === loadSeq) setItems(sortNewestFirst(items), "anchor");
  } catch (err) {
    showError(err);
  }
}

/**
 * The first load, incremental: the newest FIRST_PAGE rows are shown at once, the rest
 * is merged in when it arrives (by key, so an app that ignores `offset` only costs a
 * duplicate page). Scroll position and selection survive the merge.
 */
async function loadFirst() {
  const seq = ++loadSeq;
  try {
    const first = await fetchHistory({ limit: FIRST_PAGE });
    performance.mark("taskbell:history");
    if (seq !== loadSeq) return;
    setItems(sortNewestFirst(first), "top");
    if (state.view.length) {
      performance.mark("taskbell:rows");
      requestAnimationFrame(() => setTimeout(() => performance.mark("taskbell:painted"), 0));
    }
    if (first.length < FIRST_PAGE) return;
    // Let the first rows paint before the big answer is parsed on this thread.
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const rest = await fetchHistory({ offset: FIRST_PAGE, limit: HISTORY_LIMIT - FIRST_PAGE });
    if (seq !== loadSeq) return;
    const items = merge(state.items, rest);
    if (items !== state.items) setItems(items, "anchor");
  } catch (err) {
    showError(err);
    refresh("top");
  }
}

/** Builds the search text of all rows in 2,000-row slices between frames. */
function warmSearch(items, from) {
  if (from >= items.length || items !== state.items) return;
  prepareSearch(items, from, from + 2000);
  setTimeout(() => warmSearch(items, from + 2000), 0);
}

// ---- wiring ---------------------------------------------------------------------------

function setFilter(change) {
  Object.assign(state.filter, change);
  refresh("top");
  // A selection that survives the filter stays in view.
  if (state.selIndex >= 0) {
    scrollToRow(state.selIndex);
    renderWindow();
  }
}

function setGroup(g) {
  for (const b of $("filters").querySelectorAll("button[data-group]")) {
    b.setAttribute("aria-pressed", String(b.dataset.group === g));
  }
  setFilter({ group: g });
}

function onKey(ev) {
  if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const target = ev.target instanceof Element ? ev.target : document.body;
  const inSearch = target === search;
  const typing = target.matches("input:not([type=checkbox]):not([type=radio]), select, textarea");
  const inList = target === document.body || target === document.documentElement || vp.contains(target);
  const onButton = target.closest("button") != null;
  switch (ev.key) {
    case "/":
      if (typing) return;
      ev.preventDefault();
      search.focus();
      search.select();
      return;
    case "Escape":
      if (search.value) {
        ev.preventDefault();
        search.value = "";
        setFilter({ query: "" });
      } else if (state.filter.keys) {
        ev.preventDefault();
        clearKeys();
      } else if (inSearch) {
        ev.preventDefault();
        focusList();
      } else {
        ev.preventDefault();
        invoke("close_window").catch(showError);
      }
      return;
    case "ArrowDown":
    case "ArrowUp":
      if (!inList && !inSearch) return;
      ev.preventDefault();
      move(ev.key, !inSearch);
      return;
    case "PageDown":
    case "PageUp":
    case "Home":
    case "End":
      if (!inList) return;
      ev.preventDefault();
      move(ev.key, true);
      return;
    case "Enter": {
      if (!inSearch && !(inList && !onButton)) return;
      const n = selectedItem();
      if (!n) return;
      ev.preventDefault();
      if (n.has_link) openOne(n.key);
      return;
    }
    case "m":
    case "M": {
      if (typing) return;
      const n = selectedItem();
      if (!n || n.read) return;
      ev.preventDefault();
      markOne(n.key);
      return;
    }
    case "p":
    case "P": {
      if (typing) return;
      const n = selectedItem();
      if (!n || !projectOf(n)) return;
      ev.preventDefault();
      toggleMute(projectOf(n));
      return;
    }
    default:
  }
}

function onListClick(ev) {
  const li = ev.target.closest("li[data-key]");
  if (!li || !li._item) return;
  const n = li._item;
  const i = indexOfKey(n.key);
  if (i >= 0 && n.key !== state.selectedKey) select(i, { scroll: false });
  const button = ev.target.closest("button");
  if (button?.classList.contains("mark-one")) markOne(n.key);
  else if (button?.classList.contains("mute-project")) toggleMute(projectOf(n));
  else if (button?.classList.contains("open-one")) openOne(n.key);
  // A click on the card opens its task (not on the day heading above it).
  else if (!button && n.has_link && ev.target.closest(".card")) openOne(n.key);
}

async function init() {
  performance.mark("taskbell:start");
  translate();
  vp = $("viewport");
  list = $("list");
  search = $("search");
  state.today = localDayStart(Date.now());
  measure();
  for (const b of $("filters").querySelectorAll("button[data-group]")) {
    b.addEventListener("click", () => setGroup(b.dataset.group));
  }
  $("unread-only").addEventListener("change", (e) => setFilter({ read: e.target.checked ? "unread" : "all" }));
  $("project").addEventListener("change", (e) => setFilter({ project: e.target.value }));
  $("account").addEventListener("change", (e) => setFilter({ account: e.target.value }));
  search.addEventListener("input", () => setFilter({ query: search.value }));
  $("mark-all").addEventListener("click", markAll);
  $("keys-clear").addEventListener("click", clearKeys);
  list.addEventListener("click", onListClick);
  list.addEventListener("focusin", (ev) => {
    const li = ev.target.closest("li[data-key]");
    if (li && li._item && li._item.key !== state.selectedKey) select(indexOfKey(li._item.key), { scroll: false });
  });
  vp.addEventListener("scroll", renderWindow, { passive: true });
  document.addEventListener("keydown", onKey);
  let size = "";
  new ResizeObserver(() => {
    const now = vp.clientWidth + "x" + vp.clientHeight;
    if (now === size) return;
    size = now;
    if (measure()) refresh("anchor");
    else renderWindow();
  }).observe(vp);
  // Past midnight "Today" becomes "Yesterday": relabel the rows once a day changes.
  setInterval(() => {
    const today = localDayStart(Date.now());
    if (today === state.today) return;
    state.today = today;
    dayLabels.clear();
    renderWindow();
  }, 60_000);

  await listen(EVENTS.notification, onLive);
  await listen(EVENTS.history, reload);
  await listen(EVENTS.status, (s) => ($("state").textContent = s.state_line));
  await listen(EVENTS.showKeys, takeShownKeys);
  try {
    setRules(await invoke("get_project_policies"));
  } catch (err) {
    showError(err);
  }
  await takeShownKeys();
  try {
    $("state").textContent = (await invoke("get_status")).state_line;
  } catch {
    /* shown on the next status event */
  }
  // Timings for the 50,000-row test: first rows in the DOM and the first frame showing
  // them (marked in loadFirst), then everything loaded.
  await loadFirst();
  performance.mark("taskbell:loaded");
  warmSearch(state.items, 0);
  document.body.dataset.ready = "true";
}

init();
