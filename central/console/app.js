// Baling console shell: login, navigation, live device list. No third-party code.
"use strict";

// The access token lives only in memory and for minutes; the session's refresh
// token is an httpOnly cookie this script never sees. A reload or an expired
// access token asks /api/v1/auth/refresh for a new one, silently.
const state = { token: null, offset: 0, limit: 50, total: 0, filter: {} };
const $ = (sel) => document.querySelector(sel);
const ROLE_NAMES = {
  admin: "系统管理员", traffic: "交通指挥", police: "公安民警",
  complaints: "投诉受理", department: "承办部门", technician: "运维技术员",
};

let refreshing = null;
let refreshTimer = null;
function takeToken(answer) {
  state.token = answer.access_token;
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { refreshToken(); }, Math.max(30, answer.expires_in - 60) * 1000);
}
function refreshToken() {
  // One refresh at a time: the refresh token is used up by each call.
  if (!refreshing) {
    refreshing = fetch("/api/v1/auth/refresh", { method: "POST", credentials: "same-origin" })
      .then(async (res) => { if (!res.ok) return false; takeToken(await res.json()); return true; })
      .catch(() => false)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function authFetch(path, options = {}) {
  const send = () => {
    const headers = Object.assign({}, options.headers || {});
    if (state.token) headers.Authorization = "Bearer " + state.token;
    return fetch(path, Object.assign({}, options, { headers }));
  };
  let res = await send();
  if (res.status === 401 && state.token && await refreshToken()) res = await send();
  return res;
}

async function api(path, options = {}) {
  const res = await authFetch(path, options);
  if (res.status === 401) { logout(); throw new Error("未登录或登录已过期"); }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new Error(errorText(body));
  return body;
}

// What went wrong, in Chinese where central said it (422s carry a message
// per field); otherwise the API's detail as it is.
function errorText(body) {
  if (typeof body !== "object" || body === null) return String(body);
  if (body.message) return body.message;
  return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
}

function text(value) { return value === null || value === undefined ? "" : String(value); }
function timeText(iso) { return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "从未"; }

// The 配置 column: what central wants against what the node reports.
function configText(desired, reported, status, reason) {
  if (status === "refused") return "被拒：" + labels.reason(reason);
  if (!desired) return "未下发";
  return desired === reported ? "已同步" : "未同步";
}

function deviceRow(d) {
  const tr = document.createElement("tr");
  tr.id = "dev-" + d.id;
  tr.dataset.desired = d.desired_version || "";
  const cells = [
    d.id, labels.of("kind", d.kind), labels.of("site", d.site),
    null, timeText(d.last_seen), d.version, labels.of("health", d.health_status),
    configText(d.desired_version, d.reported_version, d.config_status, d.config_reason),
  ];
  cells.forEach((value, i) => {
    const td = document.createElement("td");
    if (i === 3) {
      const span = document.createElement("span");
      span.className = "badge " + (d.online ? "on" : "off");
      span.textContent = d.online ? "在线" : "离线";
      span.dataset.field = "online";
      td.appendChild(span);
    } else if (i === 0) {
      const a = document.createElement("a");
      a.href = "#device/" + encodeURIComponent(d.id); a.textContent = d.id;
      td.appendChild(a);
    } else {
      td.textContent = text(value);
      if (i === 4) td.dataset.field = "last_seen";
      if (i === 5) td.dataset.field = "version";
      if (i === 6) td.dataset.field = "health";
      if (i === 7) td.dataset.field = "config";
    }
    tr.appendChild(td);
  });
  return tr;
}

async function loadDevices() {
  const params = new URLSearchParams({ limit: state.limit, offset: state.offset });
  for (const [k, v] of Object.entries(state.filter)) if (v) params.set(k, v);
  const page = await api("/api/v1/devices?" + params);
  state.total = page.total;
  const rows = $("#device-rows");
  rows.replaceChildren(...page.items.map(deviceRow));
  $("#device-count").textContent = `共 ${page.total} 台`;
  $("#page-info").textContent = `${page.total ? state.offset + 1 : 0}–${state.offset + page.items.length} / ${page.total}`;
}

function applyLive(change) {
  if (["officer", "officers", "alarm", "receipt"].includes(change.type)) {
    if (typeof police !== "undefined" && !$("#page-police").hidden) police.onLive(change);
    return;
  }
  if (change.type === "complaint") {
    if (typeof complaintsPage !== "undefined" && !$("#page-complaints").hidden) complaintsPage.onLive(change);
    return;
  }
  if (["plate_read", "plate_hit"].includes(change.type)) {
    if (typeof plates !== "undefined" && !$("#page-plates").hidden) plates.onLive(change);
    return;
  }
  if (change.type === "signal_plan") {
    if (typeof signalsPage !== "undefined" && !$("#page-signals").hidden) signalsPage.onLive(change);
    return;
  }
  if (change.type === "signal_state") {
    if (typeof signalsPage !== "undefined" && !$("#page-signals").hidden) signalsPage.onSignal(change);
    return;
  }
  if (["rollout", "rollout_node"].includes(change.type)) {
    if (typeof ota !== "undefined" && !$("#page-ota").hidden) ota.onLive(change);
    return;
  }
  if (change.type !== "device") return;
  if (typeof devicePage !== "undefined") devicePage.onLive(change);
  const tr = document.getElementById("dev-" + change.id);
  if (!tr) return;
  if ("online" in change) {
    const badge = tr.querySelector('[data-field="online"]');
    badge.className = "badge " + (change.online ? "on" : "off");
    badge.textContent = change.online ? "在线" : "离线";
  }
  if (change.last_seen) tr.querySelector('[data-field="last_seen"]').textContent = timeText(change.last_seen);
  if (change.version) tr.querySelector('[data-field="version"]').textContent = change.version;
  if (change.health_status) tr.querySelector('[data-field="health"]').textContent = labels.of("health", change.health_status);
  // The node reported the configuration it runs: the 配置 column follows.
  if ("reported_version" in change || "config_status" in change) {
    tr.querySelector('[data-field="config"]').textContent = configText(tr.dataset.desired, change.reported_version, change.config_status, change.config_reason);
  }
  tr.classList.remove("flash"); void tr.offsetWidth; tr.classList.add("flash");
}

let source = null;
let liveTimer = null;
async function connectLive() {
  // EventSource cannot send headers: each connection opens with a fresh
  // single-use ticket, so on any error we close it and ask for a new one.
  if (source) source.close();
  source = null;
  clearTimeout(liveTimer);
  if (!state.token) return;
  const retry = () => {
    $("#live").className = "badge off"; $("#live").textContent = "实时：重连中";
    if (source) source.close();
    source = null;
    if (state.token) liveTimer = setTimeout(connectLive, 2000);
  };
  let ticket;
  try { ticket = (await api("/api/v1/stream/ticket", { method: "POST" })).ticket; } catch (err) { retry(); return; }
  // batch: officer positions come gathered, a few events a second, not one a position.
  source = new EventSource("/api/v1/stream?batch=true&ticket=" + encodeURIComponent(ticket));
  source.onopen = () => { $("#live").className = "badge on"; $("#live").textContent = "实时：已连接"; };
  source.onerror = retry;
  source.onmessage = (ev) => applyLive(JSON.parse(ev.data));
}

async function loadPolicy() {
  const layers = await api("/api/v1/policy");
  $("#policy-rows").replaceChildren(...layers.map((l) => {
    const tr = document.createElement("tr");
    const target = l.scope === "kind" ? labels.of("kind", l.target) : l.scope === "site" ? labels.of("site", l.target) : l.target;
    for (const v of [labels.of("scope", l.scope), target, l.version, JSON.stringify(l.values)]) {
      const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td);
    }
    return tr;
  }));
}

async function loadAudit(filter = {}) {
  const params = new URLSearchParams({ limit: 200 });
  for (const [k, v] of Object.entries(filter)) if (v) params.set(k, v);
  const rows = await api("/api/v1/audit?" + params);
  $("#audit-rows").replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    for (const v of [r.seq, timeText(r.ts), r.actor, r.action, r.target, JSON.stringify(r.detail)]) {
      const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td);
    }
    return tr;
  }));
}

function show(route) {
  // "#device/<id>" is one device's page; every other hash names a page.
  const [page, arg] = route.split("/");
  document.querySelectorAll(".page").forEach((el) => { el.hidden = el.id !== "page-" + page; });
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (page === "devices") loadDevices().catch(alertError);
  if (page === "device") devicePage.load(decodeURIComponent(arg || "")).catch((e) => { $("#dv-msg").textContent = e.message; });
  if (page === "policy") loadPolicy().catch(alertError);
  if (page === "complaints") api("/api/v1/auth/me").then((me) => complaintsPage.load(me)).catch((e) => { $("#complaints-msg").textContent = e.message; });
  if (page === "plates") plates.load().catch((e) => { $("#plates-msg").textContent = e.message; });
  if (page === "police") police.load().catch((e) => { $("#police-msg").textContent = e.message; });
  if (page === "signals") signalsPage.load().catch((e) => { $("#signals-msg").textContent = e.message; });
  if (page === "ota") ota.load().catch((e) => { $("#ota-msg").textContent = e.message; });
  if (page === "operators") operatorsPage.load().catch((e) => { $("#operators-msg").textContent = e.message; });
  if (page === "audit") loadAudit().catch((e) => { $("#audit-state").textContent = e.message; });
}

function alertError(err) { $("#policy-msg").textContent = err.message; console.error(err); }

// The device kinds come from the one registry (GET /api/v1/kinds): the code is
// the value, the Chinese label is shown. A role that reads no devices has no
// picker to fill (403), so a refusal leaves them empty. A picker keeps what
// the operator chose when it is filled again, and its first, empty option
// ("全部类型", "请选择设备类型") stays first.
async function loadKinds() {
  const kinds = await labels.loadKinds();
  if (!kinds.length) return;
  for (const picker of ['#enrol-form [name="kind"]', '#device-filter [name="kind"]', '#release-form [name="kind"]']) {
    const box = $(picker);
    const chosen = box.value;
    box.querySelectorAll('option:not([value=""])').forEach((o) => o.remove());
    for (const k of kinds) {
      const o = document.createElement("option"); o.value = k.code; o.textContent = k.label; box.appendChild(o);
    }
    if (chosen) box.value = chosen;
  }
}

async function enter() {
  // The page asked for starts loading at once, beside "who am I" (the token
  // is enough for its requests; the header waits for the answer).
  const me = api("/api/v1/auth/me");
  const admin = document.querySelector('#nav a[data-page="operators"]');
  admin.hidden = true;  // until the answer says so
  $("#login").hidden = true;
  $("#shell").hidden = false;
  show((location.hash || "#devices").slice(1));
  connectLive();
  loadKinds();
  try {
    const who = await me;
    $("#who").textContent = `${who.username}（${ROLE_NAMES[who.role] || who.role}）`;
    admin.hidden = who.role !== "admin";
  } catch (e) { $("#shell").hidden = true; $("#login").hidden = false; throw e; }
}

function logout() {
  state.token = null;
  clearTimeout(refreshTimer);
  clearTimeout(liveTimer);
  if (source) source.close();
  source = null;
  if (typeof police !== "undefined") police.stopSound();
  $("#shell").hidden = true;
  $("#login").hidden = false;
}

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const res = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(form) });
  if (res.status === 429) {
    const wait = Number(res.headers.get("Retry-After")) || 60;
    $("#login-error").textContent = `登录失败次数过多，请 ${wait} 秒后再试`;
    return;
  }
  if (!res.ok) { $("#login-error").textContent = "用户名或密码错误"; return; }
  takeToken(await res.json());
  $("#login-error").textContent = "";
  enter().catch(alertError);
});

$("#device-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.filter = Object.fromEntries(new FormData(ev.target));
  state.offset = 0;
  loadDevices().catch(alertError);
});
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadDevices(); });
$("#next").addEventListener("click", () => { if (state.offset + state.limit < state.total) { state.offset += state.limit; loadDevices(); } });
$("#logout").addEventListener("click", () => {
  // End the session on the server too: its refresh cookie stops working.
  const token = state.token;
  logout();
  if (token) fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => {});
});
$("#policy-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    const r = await api(`/api/v1/policy/${f.get("scope")}/${encodeURIComponent(f.get("target"))}`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: f.get("values"),
    });
    $("#policy-msg").textContent = `已发布第 ${r.version} 版，推送 ${r.published} 台设备`;
    loadPolicy();
  } catch (err) { alertError(err); }
});
$("#enrol-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = Object.fromEntries(new FormData(ev.target));
  try {
    const r = await api("/api/v1/enrolment/codes", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind: f.kind, site: f.site, ttl_h: Number(f.ttl_h) }),
    });
    $("#enrol-code").textContent = r.code;
    $("#enrol-device").textContent = r.device_id;
    $("#enrol-expires").textContent = timeText(r.expires_at);
    $("#enrol-cmd").textContent = `baling provision enroll --central ${location.origin} --code ${r.code}`;
    // The SVG comes from our own server (segno), not from the user.
    $("#enrol-qr").innerHTML = r.qr_svg;
    $("#enrol-result").hidden = false;
    $("#enrol-msg").textContent = "";
  } catch (err) { $("#enrol-msg").textContent = err.message; }
});
$("#audit-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  loadAudit(Object.fromEntries(new FormData(ev.target))).catch((e) => { $("#audit-state").textContent = e.message; });
});
$("#audit-verify").addEventListener("click", async () => {
  const r = await api("/api/v1/audit/verify");
  $("#audit-state").textContent = r.ok ? "哈希链完整" : `第 ${r.seq} 条有问题：${r.problem}`;
});
window.addEventListener("hashchange", () => show(location.hash.slice(1)));

refreshToken().then((ok) => (ok ? enter() : logout())).catch(() => logout());
