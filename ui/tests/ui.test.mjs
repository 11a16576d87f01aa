// ui/ in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core) against
// a stub of the Tauri bridge (stub.js). Each test loads one window's page from a small
// static server on a free port, as the app would, with the CSP the app uses.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const UI = path.resolve(HERE, "..");
const OUT = path.resolve(HERE, "../../target/ui-screenshots");
const fixture = (name) => JSON.parse(fs.readFileSync(path.join(HERE, "fixtures", name + ".json"), "utf8"));
const STUB = fs.readFileSync(path.join(HERE, "stub.js"), "utf8");
const CONF = JSON.parse(fs.readFileSync(path.resolve(UI, "../src-tauri/tauri.conf.json"), "utf8"));
// The app's CSP, as tauri.conf.json states it.
const CSP = Object.entries(CONF.app.security.csp).map(([k, v]) => `${k} ${v}`).join("; ");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png" };

let server;
let base;
let browser;

before(async () => {
  server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/^\/+/, "");
    const file = path.resolve(UI, rel);
    if (!file.startsWith(UI + path.sep) || file.includes(`${path.sep}tests${path.sep}`) || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream", "content-security-policy": CSP });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  fs.mkdirSync(OUT, { recursive: true });
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Opens `page` (e.g. "login.html") with the stub; returns {page, errors}. */
async function open(pageName, { lang = "en", ...overrides } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 520, height: 640 }, locale: lang === "zh-CN" ? "zh-CN" : "en-US" });
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const config = {
    lang,
    history: fixture("history"),
    settings: fixture("settings"),
    status: fixture("status"),
    diagnostics: fixture("diagnostics"),
    errors: fixture("errors"),
    ...overrides,
  };
  await page.addInitScript(`window.__STUB_CONFIG__ = ${JSON.stringify(config)};\n${STUB}`);
  await page.goto(`${base}/${pageName}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  return { page, errors, close: () => ctx.close() };
}

const calls = (page, cmd) => page.evaluate((c) => window.__stub.calls.filter((x) => x.cmd === c), cmd);

test("login: empty and malformed fields are refused before anything is sent", async () => {
  const { page, errors, close } = await open("login.html");
  await page.fill("#server", "");
  await page.click("#submit");
  assert.equal(await page.textContent("#error"), "Enter the platform's address.");
  assert.equal(await page.getAttribute("#server", "aria-invalid"), "true");
  await page.fill("#server", "label example com");
  await page.click("#submit");
  assert.match(await page.textContent("#error"), /not valid/);
  await page.fill("#server", "ftp://files.example.com");
  await page.click("#submit");
  assert.match(await page.textContent("#error"), /not valid/);
  await page.fill("#server", "https://label.example.com");
  await page.click("#submit");
  assert.equal(await page.textContent("#error"), "Enter your user name.");
  assert.equal((await calls(page, "sign_in")).length, 0);
  assert.deepEqual(errors, []);
  await close();
});

test("login: wrong password, unreachable server and TLS errors are shown in plain words", async () => {
  const { page, errors, close } = await open("login.html");
  assert.equal(await page.inputValue("#server"), "http://127.0.0.1:8080", "prefilled from settings");
  await page.fill("#username", "zhangsan");
  await page.fill("#password", "nope");
  await page.click("#submit");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error"), "The user name or password is wrong.");
  assert.equal(await page.getAttribute("#password", "aria-invalid"), "true");

  await page.fill("#server", "http://unreachable.invalid:9");
  await page.click("#submit");
  await page.waitForFunction(() => document.querySelector("#error").textContent.startsWith("Can't reach"));
  assert.equal(await page.getAttribute("#server", "aria-invalid"), "true");

  await page.fill("#server", "https://self-signed.example.com");
  await page.click("#submit");
  await page.waitForFunction(() => document.querySelector("#error").textContent.includes("certificate"));
  await page.screenshot({ path: path.join(OUT, "login-error.png") });

  await page.fill("#server", "http://127.0.0.1:8080");
  await page.fill("#password", "annotate-123");
  await page.click("#submit");
  await page.waitForSelector("#ok:not([hidden])");
  assert.equal(await page.textContent("#ok"), "Signed in as 张三");
  assert.equal(await page.isHidden("#error"), true);
  assert.equal(await page.inputValue("#password"), "", "password cleared after sign-in");
  const sent = await calls(page, "sign_in");
  assert.deepEqual(sent.at(-1).args, { server: "http://127.0.0.1:8080", username: "zhangsan", password: "annotate-123", remember: true });
  assert.deepEqual(errors, []);
  await close();
});

test("login: Chinese labels and errors", async () => {
  const { page, close } = await open("login.html", { lang: "zh-CN" });
  assert.equal(await page.textContent("h1"), "登录 TaskBell");
  await page.fill("#username", "zhangsan");
  await page.fill("#password", "bad");
  await page.click("#submit");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error"), "用户名或密码不正确。");
  await close();
});

test("center: lists history newest first with unread highlighted", async () => {
  const { page, errors, close } = await open("center.html");
  const keys = await page.$$eval("#list li", (lis) => lis.map((li) => li.dataset.key));
  assert.deepEqual(keys, ["n-5", "n-3", "n-2", "n-1", "n-4"]);
  const unread = await page.$$eval("#list li.unread", (lis) => lis.map((li) => li.dataset.key));
  assert.deepEqual(unread, ["n-3", "n-1", "n-4"]);
  assert.equal(await page.textContent("#unread"), "3 unread");
  assert.equal(await page.textContent("#state"), "Connected · 38 ms");
  await page.screenshot({ path: path.join(OUT, "center.png") });
  assert.deepEqual(errors, []);
  await close();
});

test("center: filter by kind and unread only", async () => {
  const { page, close } = await open("center.html");
  await page.click("#filters button[data-group=reviews]");
  assert.deepEqual(await page.$$eval("#list li", (l) => l.map((li) => li.dataset.key)), ["n-1"]);
  assert.equal(await page.getAttribute("#filters button[data-group=reviews]", "aria-pressed"), "true");
  await page.click("#filters button[data-group=chat]");
  assert.deepEqual(await page.$$eval("#list li", (l) => l.map((li) => li.dataset.key)), ["n-5"]);
  await page.check("#unread-only");
  assert.equal(await page.locator("#list li").count(), 0);
  assert.equal(await page.isVisible("#empty"), true);
  await page.click("#filters button[data-group='']");
  assert.deepEqual(await page.$$eval("#list li", (l) => l.map((li) => li.dataset.key)), ["n-3", "n-1", "n-4"]);
  await close();
});

test("center: mark one read, mark all read, click opens the task", async () => {
  const { page, close } = await open("center.html");
  await page.click("#list li[data-key=n-3] button.mark-one");
  await page.waitForSelector("#list li[data-key=n-3].read");
  assert.deepEqual((await calls(page, "mark_read")).map((c) => c.args), [{ keys: ["n-3"] }]);
  assert.equal(await page.textContent("#unread"), "2 unread");

  await page.click("#list li[data-key=n-1] .content");
  await page.waitForSelector("#list li[data-key=n-1].read");
  assert.deepEqual((await calls(page, "open_notification")).map((c) => c.args), [{ key: "n-1" }]);
  // Items without a link do not open anything.
  await page.click("#list li[data-key=n-4] .content");
  assert.equal((await calls(page, "open_notification")).length, 1);

  await page.click("#mark-all");
  await page.waitForFunction(() => document.querySelectorAll("#list li.unread").length === 0);
  assert.equal(await page.textContent("#unread"), "0 unread");
  assert.equal((await calls(page, "mark_all_read")).length, 1);
  await close();
});

test("center: a live notification appears at the top, once", async () => {
  const { page, close } = await open("center.html");
  assert.ok((await page.evaluate(() => window.__stub.listening("taskbell://notification"))) >= 1);
  const live = { key: "live-1", kind: "task_reviewed", group: "reviews", title: "Task rejected", content: "Street view #99", priority: "high", timestamp_ms: 1763720000000, read: false, has_link: true };
  await page.evaluate((n) => window.__stub.emit("taskbell://notification", n), live);
  await page.evaluate((n) => window.__stub.emit("taskbell://notification", n), live);
  await page.waitForSelector("#list li[data-key=live-1].unread");
  assert.equal(await page.locator("#list li[data-key=live-1]").count(), 1);
  assert.equal(await page.$eval("#list li", (li) => li.dataset.key), "live-1");
  assert.equal(await page.textContent("#unread"), "4 unread");
  await page.evaluate(() => window.__stub.emit("taskbell://status", { state: { kind: "reconnecting", in_secs: 8, reason: "x" }, unread: 4 }));
  assert.equal(await page.textContent("#state"), "Reconnecting in 8 s");
  await close();
});

test("settings: round-trip and validation", async () => {
  const { page, errors, close } = await open("settings.html");
  assert.equal(await page.inputValue("#server"), "http://127.0.0.1:8080");
  assert.equal(await page.inputValue("#heartbeat"), "30");
  assert.equal(await page.isHidden("#quiet-times"), true);
  await page.fill("#heartbeat", "2");
  await page.click("#save");
  assert.match(await page.textContent("#error"), /between 5 and 300/);
  assert.equal((await calls(page, "save_settings")).length, 0);

  await page.fill("#heartbeat", "45");
  await page.check("#quiet");
  await page.fill("#quiet-start", "21:30");
  await page.fill("#quiet-end", "07:15");
  await page.uncheck("#urgent");
  await page.selectOption("#language", "zh-CN");
  await page.check("#autostart");
  await page.click("#save");
  await page.waitForSelector("#ok:not([hidden])");
  const saved = await page.evaluate(() => window.__stub.db.settings);
  assert.deepEqual(saved, {
    server: "http://127.0.0.1:8080", username: "zhangsan", heartbeat_interval_secs: 45, quiet_hours_enabled: true,
    quiet_start: "21:30", quiet_end: "07:15", urgent_bypass: false, language: "zh-CN", autostart: true, sound: true,
  });
  await page.screenshot({ path: path.join(OUT, "settings.png") });
  // Reopen: the saved values come back.
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  assert.equal(await page.inputValue("#heartbeat"), "45");
  assert.equal(await page.inputValue("#quiet-start"), "21:30");
  assert.equal(await page.isChecked("#autostart"), true);
  assert.equal(await page.inputValue("#language"), "zh-CN");
  assert.deepEqual(errors, []);
  await close();
});

test("settings: an error from the app is shown", async () => {
  const { page, close } = await open("settings.html");
  // The window does not check URLs itself; the app's answer is shown as it is.
  await page.fill("#server", "http://label example");
  await page.click("#save");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error"), 'server: "http://label example" is not a valid URL');
  assert.equal((await calls(page, "save_settings")).length, 1);
  assert.equal(await page.isHidden("#ok"), true);
  await close();
});

test("diagnostics: sparkline, checks with what to do, reconnect log, test notification", async () => {
  const { page, errors, close } = await open("diagnostics.html");
  const points = await page.getAttribute("#spark polyline", "points");
  assert.equal(points.split(" ").length, 7);
  assert.equal(await page.textContent("#latency-stats"), "last 30 ms · min 12 ms · max 90 ms");
  assert.equal(await page.textContent("tr[data-check=notifications] .check-bad"), "Missing");
  assert.match(await page.textContent("tr[data-check=notifications] .fix"), /dunst/);
  assert.equal(await page.textContent("tr[data-check=keyring] .check-ok"), "OK");
  assert.match(await page.textContent("#reconnects"), /server closed the connection/);
  assert.match(await page.textContent("#reconnects"), /第 3 次重连，2\.4 秒后|attempt 3, in 2\.4 s/);
  await page.click("#test");
  await page.waitForSelector("#ok:not([hidden])");
  assert.equal((await calls(page, "send_test_notification")).length, 1);
  await page.evaluate(() => window.__stub.emit("taskbell://diagnostics", { latency_ms: [5, 6], reconnects: [], checks: [] }));
  assert.equal(await page.textContent("#latency-stats"), "last 6 ms · min 5 ms · max 6 ms");
  assert.equal(await page.isVisible("#reconnects-none"), true);
  await page.screenshot({ path: path.join(OUT, "diagnostics.png") });
  assert.deepEqual(errors, []);
  await close();
});

test("the CSP blocks inline script, so pages work only through their modules", async () => {
  const { page, close } = await open("center.html");
  const ran = await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__inline = 1";
    document.body.append(s);
    return window.__inline === 1;
  });
  assert.equal(ran, false);
  await close();
});
