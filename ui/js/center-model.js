// Pure list logic of the notification center (no DOM), so it is easy to test.

/** Newest first; unknown timestamps last. */
export function sortNewestFirst(items) {
  return [...items].sort((a, b) => (b.timestamp_ms || 0) - (a.timestamp_ms || 0));
}

/** Items of `group` ("" = all), only unread when `unreadOnly`. */
export function applyFilter(items, group, unreadOnly) {
  return items.filter((n) => (!group || n.group === group) && (!unreadOnly || !n.read));
}

/** Adds a live notification unless its key is already there; returns a new array. */
export function upsert(items, n) {
  if (items.some((x) => x.key === n.key)) return items;
  return sortNewestFirst([n, ...items]);
}

/** Marks `keys` read (all when keys is null); returns a new array. */
export function markRead(items, keys) {
  const set = keys ? new Set(keys) : null;
  return items.map((n) => (!set || set.has(n.key) ? { ...n, read: true } : n));
}

/** Local date-time text for a timestamp in ms. */
export function timeText(ms, lang) {
  if (!ms) return "";
  return new Date(ms).toLocaleString(lang === "zh-CN" ? "zh-CN" : "en-GB", {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}
