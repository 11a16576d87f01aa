// Pure list logic of the notification center (no DOM), so it is easy to test:
// sorting, search, combined filters, day grouping, live upsert and the virtual list's
// row offsets. Lists are newest first and never mutated; every change returns a new array.

/** Newest first; unknown timestamps last. Stable for equal timestamps. */
export function sortNewestFirst(items) {
  return [...items].sort((a, b) => (b.timestamp_ms || 0) - (a.timestamp_ms || 0));
}

/** The task id of a notification as text ("" when it has none). */
export function taskIdOf(n) {
  return n.task_id == null ? "" : String(n.task_id);
}

/** The project of a notification as text ("" when it has none). */
export function projectOf(n) {
  return n.project == null ? "" : String(n.project);
}

/** The account a notification came to ("" when the app runs a single account). */
export function accountOf(n) {
  return n.account == null ? "" : String(n.account);
}

// Lower-cased, NFKC-folded search text per notification object (objects are never
// mutated, so the cache cannot go stale; a changed notification is a new object).
const haystacks = new WeakMap();
const fold = (s) => String(s).normalize("NFKC").toLowerCase();

function haystack(n) {
  let h = haystacks.get(n);
  if (h === undefined) {
    const task = taskIdOf(n);
    h = fold([n.title ?? "", n.content ?? "", task, task ? "#" + task : "", projectOf(n), accountOf(n)].join("\n"));
    haystacks.set(n, h);
  }
  return h;
}

/** Prepares the search text of items[from..to) ahead of the first search (idle work). */
export function prepareSearch(items, from = 0, to = items.length) {
  for (let i = from; i < Math.min(to, items.length); i++) haystack(items[i]);
}

/** The search terms of a query: folded, split on white space. */
export function parseQuery(query) {
  return fold(query ?? "").split(/\s+/).filter(Boolean);
}

/** Whether `n` contains every term (title, content, task id, project; case-insensitive). */
export function matchesQuery(n, terms) {
  if (!terms.length) return true;
  const h = haystack(n);
  return terms.every((t) => h.includes(t));
}

/**
 * Whether `n` passes the filter: `group` ("" = all kinds), `project` ("" = all),
 * `account` ("" = all), `read` ("all", "unread" or "read"), `query` (search text) and
 * `keys` (a Set of keys, e.g. those a folded toast stood for; null = all), all combined.
 */
export function matchesFilter(n, { group = "", project = "", account = "", read = "all", query = "", terms, keys = null } = {}) {
  if (keys && !keys.has(n.key)) return false;
  if (group && n.group !== group) return false;
  if (project && projectOf(n) !== project) return false;
  if (account && accountOf(n) !== account) return false;
  if (read === "unread" && n.read) return false;
  if (read === "read" && !n.read) return false;
  return matchesQuery(n, terms ?? parseQuery(query));
}

/** Whether the filter lets everything through. */
export function isFilterEmpty({ group = "", project = "", account = "", read = "all", query = "", keys = null } = {}) {
  return !keys && !group && !project && !account && read === "all" && parseQuery(query).length === 0;
}

/** The items passing the filter (see [`matchesFilter`]), in order. */
export function filterItems(items, filter = {}) {
  if (isFilterEmpty(filter)) return items;
  const f = { ...filter, terms: parseQuery(filter.query) };
  return items.filter((n) => matchesFilter(n, f));
}

/** Items of `group` ("" = all), only unread when `unreadOnly`. */
export function applyFilter(items, group, unreadOnly) {
  return filterItems(items, { group, read: unreadOnly ? "unread" : "all" });
}

/** The distinct projects of `items`, sorted. */
export function projectsOf(items) {
  const set = new Set();
  for (const n of items) {
    const p = projectOf(n);
    if (p) set.add(p);
  }
  return [...set].sort((a, b) => a.localeCompare(b));
}

/** The distinct accounts of `items`, sorted (empty with a single account). */
export function accountsOf(items) {
  const set = new Set();
  for (const n of items) {
    const a = accountOf(n);
    if (a) set.add(a);
  }
  return [...set].sort((a, b) => a.localeCompare(b));
}

/** Where a notification stamped `ts` goes in a newest-first list (before equal stamps). */
export function insertionIndex(items, ts) {
  const t = ts || 0;
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((items[mid].timestamp_ms || 0) > t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Adds a live notification at its place (binary search, no re-sort) unless its key is
 * already there, in which case `items` itself is returned.
 */
export function upsert(items, n) {
  if (items.some((x) => x.key === n.key)) return items;
  const i = insertionIndex(items, n.timestamp_ms);
  const out = items.slice();
  out.splice(i, 0, n);
  return out;
}

/**
 * Adds the notifications of `more` whose keys are not in `items` (a later page of the
 * history: the rows already held win, they may be newer), newest first.
 */
export function merge(items, more) {
  if (!more.length) return items;
  const have = new Set(items.map((n) => n.key));
  const added = more.filter((n) => !have.has(n.key));
  return added.length ? sortNewestFirst(items.concat(added)) : items;
}

/** Marks `keys` read (all when keys is null); returns a new array (unchanged rows kept). */
export function markRead(items, keys) {
  const set = keys ? new Set(keys) : null;
  return items.map((n) => ((!set || set.has(n.key)) && !n.read ? { ...n, read: true } : n));
}

/** Local midnight (ms) of the day of `ms`; null for an unknown (0/absent) timestamp. */
export function localDayStart(ms) {
  if (!ms) return null;
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function nextDayStart(day) {
  const d = new Date(day);
  d.setDate(d.getDate() + 1);
  return d.getTime();
}

/**
 * The local-day groups of a newest-first list: [{day, start, end}] where `day` is the
 * local midnight (null for undated items) and rows start..end-1 belong to it. O(n) with
 * one Date computation per day, so 50,000 rows take a millisecond or two.
 */
export function dayGroups(items) {
  const groups = [];
  let lo = 0;
  let hi = -1; // [lo, hi) is the current day's range; empty at first
  let undated = false;
  for (let i = 0; i < items.length; i++) {
    const ts = items[i].timestamp_ms || 0;
    if (ts ? !undated && ts >= lo && ts < hi : undated) continue;
    if (groups.length) groups[groups.length - 1].end = i;
    const day = localDayStart(ts);
    undated = day === null;
    if (!undated) {
      lo = day;
      hi = nextDayStart(day);
    }
    groups.push({ day, start: i, end: items.length });
  }
  return groups;
}

/** The index in `groups` of the group holding row `i` (binary search). */
export function groupIndexAt(groups, i) {
  let lo = 0;
  let hi = groups.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (groups[mid].start <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

const LOCALE = (lang) => (lang === "zh-CN" ? "zh-CN" : "en-GB");
const formats = new Map();
function format(lang, opts) {
  const id = lang + JSON.stringify(opts);
  let f = formats.get(id);
  if (!f) formats.set(id, (f = new Intl.DateTimeFormat(LOCALE(lang), opts)));
  return f;
}

/**
 * The heading of a day group: words.today, words.yesterday, else a locale date
 * (with the year only when it is not this year); words.undated for undated items.
 */
export function dayLabel(day, nowMs, lang, words) {
  if (day == null) return words.undated;
  const today = localDayStart(nowMs);
  if (day === today) return words.today;
  const yesterday = new Date(today);
  yesterday.setDate(yesterday.getDate() - 1);
  if (day === yesterday.getTime()) return words.yesterday;
  const sameYear = new Date(day).getFullYear() === new Date(nowMs).getFullYear();
  const opts = { weekday: "short", day: "numeric", month: "short" };
  if (!sameYear) opts.year = "numeric";
  return format(lang, opts).format(day);
}

/** Local date-time text for a timestamp in ms. */
export function timeText(ms, lang) {
  if (!ms) return "";
  return format(lang, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }).format(ms);
}

/** Local "HH:MM" for a timestamp in ms (the day is in the group heading). */
export function clockText(ms, lang) {
  if (!ms) return "";
  return format(lang, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
}

/**
 * The virtual list's geometry: offsets[i] is the top of row i, offsets[count] the total
 * height. Every row is `rowH` tall; the first row of each day group also holds the
 * group's heading (`headH` more).
 */
export function rowOffsets(count, groups, rowH, headH) {
  const off = new Float64Array(count + 1);
  let y = 0;
  let g = 0;
  for (let i = 0; i < count; i++) {
    off[i] = y;
    y += rowH;
    if (g < groups.length && groups[g].start === i) {
      y += headH;
      g++;
    }
  }
  off[count] = y;
  return off;
}

/** The row at height `y` (the last row whose top is at or above y); 0 for an empty list. */
export function indexAt(offsets, y) {
  const count = offsets.length - 1;
  if (count <= 0) return 0;
  let lo = 0;
  let hi = count - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (offsets[mid] <= y) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
