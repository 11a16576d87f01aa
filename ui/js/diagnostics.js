// Diagnostics: latency sparkline, reconnect log, self-checks with what to do, test toast.
import { invoke, listen, EVENTS } from "./tauri.js";
import { t, translate, errorText, lang } from "./i18n.js";
import { sparkPoints } from "./sparkline.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.append(td);
  return td;
}

function render(d) {
  const samples = d.latency_ms || [];
  $("latency-title").textContent = t("diag.latency", { n: samples.length });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 300 60");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", sparkPoints(samples));
  svg.append(line);
  $("spark").replaceChildren(svg);
  $("latency-stats").textContent = samples.length
    ? t("diag.latency_stats", { last: samples[samples.length - 1], min: Math.min(...samples), max: Math.max(...samples) })
    : t("diag.latency_none");

  const checks = $("checks");
  checks.replaceChildren();
  for (const c of d.checks || []) {
    const tr = document.createElement("tr");
    tr.dataset.check = c.id;
    cell(tr, t("diag.check." + c.id));
    cell(tr, c.ok ? t("diag.ok") : t("diag.missing"), c.ok ? "check-ok" : "check-bad");
    const td = cell(tr, c.detail);
    if (!c.ok && c.fix) {
      const fix = document.createElement("div");
      fix.className = "fix";
      fix.textContent = c.fix;
      td.append(fix);
    }
    checks.append(tr);
  }

  const log = $("reconnects");
  log.replaceChildren();
  for (const r of d.reconnects || []) {
    const tr = document.createElement("tr");
    cell(tr, new Date(r.at_ms).toLocaleTimeString(lang() === "zh-CN" ? "zh-CN" : "en-GB"));
    cell(tr, r.account ? `${r.account}: ${r.reason}` : r.reason);
    cell(tr, t("diag.reconnect_row", { delay: Math.round(r.delay_ms / 100) / 10, attempt: r.attempt || 1 }));
    log.append(tr);
  }
  $("reconnects-none").hidden = (d.reconnects || []).length > 0;
}

async function refresh() {
  try {
    render(await invoke("get_diagnostics"));
  } catch (err) {
    $("error").textContent = errorText(err);
    $("error").hidden = false;
  }
}

function action(cmd, okKey) {
  return async () => {
    $("error").hidden = true;
    $("ok").hidden = true;
    try {
      await invoke(cmd);
      if (okKey) {
        $("ok").textContent = t(okKey);
        $("ok").hidden = false;
      }
    } catch (err) {
      $("error").textContent = errorText(err);
      $("error").hidden = false;
    }
  };
}

async function init() {
  translate();
  $("test").addEventListener("click", action("send_test_notification", "diag.test_sent"));
  $("reconnect").addEventListener("click", action("reconnect_now", null));
  await listen(EVENTS.diagnostics, (d) => render(d));
  await listen(EVENTS.status, (s) => ($("state").textContent = s.state_line));
  try {
    $("state").textContent = (await invoke("get_status")).state_line;
  } catch {
    /* shown on the next status event */
  }
  await refresh();
  document.body.dataset.ready = "true";
}

init();
