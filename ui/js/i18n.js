// zh-CN and English strings for every window, in one table: key → [zh, en].
// The language comes from the app (window.__TASKBELL_LANG__, set when the window is made),
// else from the browser.

const T = {
  "app.name": ["TaskBell", "TaskBell"],
  "login.title": ["登录 TaskBell", "Sign in to TaskBell"],
  "login.lead": ["连接到你的标注平台，接收任务通知。", "Connect to your annotation platform to get task notifications."],
  "login.server": ["平台地址", "Platform address"],
  "login.username": ["用户名", "User name"],
  "login.password": ["密码", "Password"],
  "login.remember": ["记住我（密码保存在系统钥匙串中）", "Remember me (password kept in the system keyring)"],
  "login.submit": ["登录", "Sign in"],
  "login.busy": ["正在登录…", "Signing in…"],
  "login.ok": ["已登录：{name}", "Signed in as {name}"],
  "err.empty_server": ["请输入平台地址。", "Enter the platform's address."],
  "err.empty_username": ["请输入用户名。", "Enter your user name."],
  "err.empty_password": ["请输入密码。", "Enter your password."],
  "err.bad_url": ["平台地址无效，应类似 https://label.example.com。", "That address is not valid. It should look like https://label.example.com."],
  "err.wrong_password": ["用户名或密码不正确。", "The user name or password is wrong."],
  "err.unreachable": ["无法连接到服务器。请检查地址和网络。", "Can't reach the server. Check the address and your network."],
  "err.tls": ["安全连接失败：服务器证书不受信任或已过期。", "The secure connection failed: the server's certificate is not trusted or has expired."],
  "err.rate_limited": ["尝试次数过多，请稍后再试。", "Too many attempts. Please wait a moment and try again."],
  "err.server": ["服务器出错了：{message}", "The server had a problem: {message}"],
  "err.invalid": ["{message}", "{message}"],
  "err.not_signed_in": ["尚未登录。", "You are not signed in."],
  "err.local": ["出错了：{message}", "Something went wrong: {message}"],
  "center.title": ["通知", "Notifications"],
  "center.unread": ["{n} 条未读", "{n} unread"],
  "center.mark_all": ["全部标为已读", "Mark all read"],
  "center.mark_one": ["标为已读", "Mark read"],
  "center.unread_only": ["只看未读", "Unread only"],
  "center.empty": ["没有通知。", "No notifications."],
  "center.state": ["状态：{state}", "State: {state}"],
  "center.search": ["搜索标题、内容、任务、项目", "Search title, task, project…"],
  "center.search_label": ["搜索通知（标题、内容、任务编号、项目）", "Search notifications (title, content, task id, project)"],
  "center.project_label": ["项目", "Project"],
  "center.project_all": ["全部项目", "All projects"],
  "center.account_label": ["账号", "Account"],
  "center.account_all": ["全部账号", "All accounts"],
  "center.kind_label": ["按类型筛选", "Filter by kind"],
  "center.list_label": ["通知列表", "Notification list"],
  "center.open": ["打开", "Open"],
  "center.open_title": ["在浏览器中打开任务", "Open the task in the browser"],
  "center.today": ["今天", "Today"],
  "center.yesterday": ["昨天", "Yesterday"],
  "center.undated": ["日期未知", "Date unknown"],
  "center.task": ["任务 #{id}", "Task #{id}"],
  "center.new": ["新通知：{title}", "New notification: {title}"],
  "center.new_many": ["{n} 条新通知，最新：{title}", "{n} new notifications, latest: {title}"],
  "center.no_match": ["没有符合条件的通知。", "No notifications match."],
  "center.count": [" · 显示 {shown} / {total} 条", " · {shown} of {total} shown"],
  "center.keys": ["↑↓ 选择 · Enter 打开 · M 标为已读 · P 静音项目 · / 搜索 · Esc 清除搜索或关闭", "↑↓ select · Enter open · M mark read · P mute project · / search · Esc clear or close"],
  "center.mute_project": ["静音项目", "Mute project"],
  "center.unmute_project": ["取消静音项目", "Unmute project"],
  "center.mute": ["静音", "Mute"],
  "center.unmute": ["取消静音", "Unmute"],
  "center.mute_title": ["不再弹出这个项目的通知（仍会保存）", "No more toasts from this project (still stored)"],
  "center.unmute_title": ["恢复这个项目的通知提示", "Show toasts from this project again"],
  "center.muted": ["已静音项目 {project}：不再弹出提示（再按 P 或“取消静音”恢复）", "Project {project} muted: no more toasts (press P or Unmute project to undo)"],
  "center.unmuted": ["已取消静音项目 {project}", "Project {project} unmuted"],
  "center.muted_chip": ["已静音", "muted"],
  "center.keys_filter": ["来自一条折叠通知的 {n} 条", "{n} from a folded notification"],
  "center.keys_clear": ["显示全部", "Show all"],
  "filter.all": ["全部", "All"],
  "filter.reviews": ["审核", "Reviews"],
  "filter.submissions": ["提交", "Submissions"],
  "filter.mentions": ["提及", "Mentions"],
  "filter.system": ["系统", "System"],
  "filter.chat": ["消息", "Chat"],
  "settings.title": ["设置", "Settings"],
  "settings.server": ["平台地址", "Platform address"],
  "settings.heartbeat": ["心跳间隔（秒）", "Heartbeat interval (seconds)"],
  "settings.quiet": ["免打扰时段", "Quiet hours"],
  "settings.quiet_from": ["从", "From"],
  "settings.quiet_to": ["到", "To"],
  "settings.urgent": ["暂停或免打扰时仍显示紧急通知", "Let urgent notifications through while paused or in quiet hours"],
  "settings.language": ["语言", "Language"],
  "settings.lang_system": ["跟随系统", "Same as the system"],
  "settings.autostart": ["登录系统时启动 TaskBell", "Start TaskBell when I log in"],
  "settings.sound": ["通知声音", "Notification sound"],
  "settings.save": ["保存", "Save"],
  "settings.saved": ["已保存。", "Saved."],
  "settings.diagnostics": ["诊断…", "Diagnostics…"],
  "settings.err_heartbeat": ["心跳间隔应在 {min} 到 {max} 秒之间。", "The heartbeat interval must be between {min} and {max} seconds."],
  "settings.err_time": ["时间应为 HH:MM 格式。", "Times must look like HH:MM."],
  "settings.err_sound": ["“{kind}”的声音名称无效（例如 message-new-instant、bell）。", "The sound for “{kind}” is not a valid sound name (e.g. message-new-instant, bell)."],
  "settings.err_project": ["项目 ID 不能为空。", "A project id cannot be empty."],
  "settings.kinds": ["按类型提示", "Toasts by kind"],
  "settings.kinds_hint": ["每条通知都会保存并计入未读；这里只决定是否弹出提示及其声音。", "Every notification is stored and counted; this only decides its toast and its sound."],
  "settings.kind": ["类型", "Kind"],
  "settings.policy": ["提示", "Toast"],
  "settings.kind_sound": ["声音", "Sound"],
  "settings.sound_default": ["默认", "Default"],
  "settings.projects": ["按项目提示", "Toasts by project"],
  "settings.projects_hint": ["项目规则比类型规则更严格时生效。", "A project's rule applies when it is stricter than its kind's."],
  "settings.projects_empty": ["还没有项目规则。也可以在通知中心的某一行上静音其项目。", "No project rules yet. You can also mute a project from a row in the notification center."],
  "settings.project_id": ["项目 ID", "Project id"],
  "settings.project_add": ["添加", "Add"],
  "settings.project_remove": ["移除", "Remove"],
  "policy.show": ["显示", "Show"],
  "policy.store": ["仅保存", "Store only"],
  "policy.mute": ["静音", "Mute"],
  "kind.task_reviewed": ["审核结果", "Review results"],
  "kind.task_submitted": ["待审核任务", "Submitted for review"],
  "kind.task_assigned": ["任务分配", "Task assigned"],
  "kind.skip_requested": ["跳过申请", "Skip requests"],
  "kind.mention": ["@提及", "Mentions"],
  "kind.system": ["系统通知", "System"],
  "kind.test": ["测试通知", "Test"],
  "kind.group": ["群消息", "Group messages"],
  "kind.private": ["私信", "Private messages"],
  "diag.title": ["诊断", "Diagnostics"],
  "diag.latency": ["心跳延迟（最近 {n} 次）", "Heartbeat latency (last {n})"],
  "diag.latency_none": ["还没有心跳数据。", "No heartbeat yet."],
  "diag.latency_stats": ["最近 {last} ms · 最低 {min} ms · 最高 {max} ms", "last {last} ms · min {min} ms · max {max} ms"],
  "diag.reconnects": ["重连记录", "Reconnect log"],
  "diag.reconnects_none": ["没有重连。", "No reconnects."],
  "diag.reconnect_row": ["第 {attempt} 次重连，{delay} 秒后", "attempt {attempt}, in {delay} s"],
  "diag.checks": ["自检", "Self-check"],
  "diag.test": ["发送测试通知", "Send a test notification"],
  "diag.test_sent": ["已发送测试通知。", "Test notification sent."],
  "diag.reconnect": ["立即重连", "Reconnect now"],
  "diag.check.keyring": ["钥匙串", "Keyring"],
  "diag.check.notifications": ["通知服务", "Notification daemon"],
  "diag.check.tray": ["系统托盘", "System tray"],
  "diag.ok": ["正常", "OK"],
  "diag.missing": ["缺失", "Missing"],
};

/** "zh-CN" or "en". */
export function lang() {
  const l = window.__TASKBELL_LANG__ || navigator.language || "en";
  return String(l).toLowerCase().startsWith("zh") ? "zh-CN" : "en";
}

/** The text for `key` with `{name}` placeholders filled from `args`. */
export function t(key, args = {}) {
  const row = T[key];
  if (!row) return key;
  const s = lang() === "zh-CN" ? row[0] : row[1];
  return s.replace(/\{(\w+)\}/g, (m, k) => (k in args ? String(args[k]) : m));
}

/** Fills every element with data-i18n="key" (text), data-i18n-placeholder or data-i18n-aria-label. */
export function translate(root = document) {
  document.documentElement.lang = lang();
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  for (const el of root.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nAriaLabel));
  }
}


/** A user-facing sentence for a command error ({kind, message, field}). */
export function errorText(err) {
  if (!err || typeof err !== "object") return t("err.local", { message: String(err) });
  const key = "err." + err.kind;
  return T[key] ? t(key, { message: err.message || "" }) : err.message || String(err.kind);
}
