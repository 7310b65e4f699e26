// 设备详情 (#device/<id>): one device as the fleet operator inspects it —
// presence, version and health; configuration desired vs reported with its
// drift, updated live as the node reports; its certificates; its OTA
// history with each node report's reason; the newest events and a 24-hour
// chart of how many came in (hand-drawn SVG bars, no chart library), its
// telemetry of the day as charts (chart.js, one per measured field); and
// commands with their replies. Reads GET /api/v1/devices/{id}/overview and
// /config; sends POST /commands/{name}.
"use strict";

const devicePage = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const FW = labels.TABLES.fw;
  const WAVE = { pending: "等待", assigned: "进行中", succeeded: "成功", failed: "失败" };
  // Loop diagnoses (loop_detector/traffic.py): what a person reads.
  const FAULT = { stuck_on: "线圈常占（停车或短路）", stuck_off: "线圈长时间无车（断线）", chattering: "信号抖动（感应不稳）", lane_fault: "检测卡报线圈故障" };
  let current = null;

  function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const v of cells) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); }
    tbody.appendChild(tr);
    return tr;
  }

  function facts(d) {
    const dl = $("#dv-facts");
    dl.replaceChildren();
    const put = (k, v, field) => {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = text(v);
      if (field) dd.dataset.field = field;
      dl.append(dt, dd);
    };
    put("编号", d.id);
    put("类型", labels.of("kind", d.kind));
    put("站点", labels.of("site", d.site) || "未分配");
    put("状态", d.online ? "在线" : "离线", "online");
    put("最后上报", timeText(d.last_seen), "last_seen");
    put("软件版本", d.version || "未知", "version");
    put("健康", labels.of("health", d.health_status), "health");
    put("分组", (d.groups || []).join("、") || "无");
  }

  // Drift: the version central wants against the one the node runs.
  function drift(desiredVersion, reported) {
    if (!desiredVersion) return ["未下发", ""];
    if (reported.status === "refused") return ["被拒", reported.reason ? "原因：" + labels.reason(reported.reason) : ""];
    return desiredVersion === reported.version ? ["已同步", ""] : ["未同步", `节点仍在第 ${reported.version || "—"} 版`];
  }

  function showConfig(cfg) {
    current.config = cfg;
    const [state, why] = drift(cfg.desired.version, cfg.reported);
    $("#dv-drift").textContent = state + (why ? "（" + why + "）" : "");
    $("#dv-drift").className = "badge " + (state === "已同步" ? "on" : "off");
    $("#dv-desired-version").textContent = cfg.desired.version || "—";
    $("#dv-reported-version").textContent = cfg.reported.version || "—";
    $("#dv-sources").textContent = (cfg.desired.sources || []).join(" → ") || "—";
    const body = $("#dv-config-rows");
    body.replaceChildren();
    for (const [k, v] of Object.entries(cfg.desired.values || {})) row(body, [k, JSON.stringify(v)]);
  }

  function chart(hourly) {
    const svg = $("#dv-chart");
    svg.replaceChildren();
    if (!hourly) { svg.hidden = true; return; }
    svg.hidden = false;
    const max = Math.max(1, ...hourly.counts), w = 480, h = 80, bw = w / hourly.counts.length;
    hourly.counts.forEach((n, i) => {
      const bh = (n / max) * (h - 14);
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", (i * bw + 1).toFixed(1)); r.setAttribute("y", (h - bh).toFixed(1));
      r.setAttribute("width", (bw - 2).toFixed(1)); r.setAttribute("height", bh.toFixed(1));
      r.setAttribute("class", "bar-n");
      const t = document.createElementNS(SVG, "title"); t.textContent = `${n} 条`; r.appendChild(t);
      svg.appendChild(r);
    });
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", 2); label.setAttribute("y", 11); label.setAttribute("class", "chart-note");
    label.textContent = `近 24 小时事件数（每小时，最多 ${max} 条）`;
    svg.appendChild(label);
    svg.setAttribute("aria-label", `近 24 小时每小时事件数：${hourly.counts.join("、")}`);
  }

  // A loop detector: each loop's newest minute, its day as bars (vehicles
  // per hour) with the mean occupancy as a line, and the faults of the day.
  function detector(d) {
    const box = $("#dv-detector");
    box.hidden = !d;
    if (!d) return;
    const now = $("#dv-loop-rows");
    now.replaceChildren();
    for (const l of d.latest) row(now, [`线圈 ${l.lane}`, l.count, l.flow_vph, l.occupancy_pct == null ? "—" : l.occupancy_pct + "%", l.speed_kmh == null ? "—" : l.speed_kmh, l.headway_s == null ? "—" : l.headway_s]);
    if (!d.latest.length) row(now, ["近 24 小时没有检测数据", "", "", "", "", ""]);
    const charts = $("#dv-loop-charts");
    charts.replaceChildren();
    for (const lane of d.lanes) {
      const fig = document.createElement("figure");
      fig.className = "loop-chart"; fig.dataset.lane = lane.lane;
      const cap = document.createElement("figcaption");
      const total = lane.counts.reduce((a, b) => a + b, 0);
      cap.textContent = `线圈 ${lane.lane}：近 24 小时 ${total} 辆（柱：每小时车辆数；线：平均占有率）`;
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 480 90"); svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", `线圈 ${lane.lane} 每小时车辆数：${lane.counts.join("、")}`);
      const max = Math.max(1, ...lane.counts), bw = 480 / lane.counts.length;
      lane.counts.forEach((n, i) => {
        const bh = (n / max) * 80;
        const r = document.createElementNS(SVG, "rect");
        r.setAttribute("x", (i * bw + 1).toFixed(1)); r.setAttribute("y", (90 - bh).toFixed(1));
        r.setAttribute("width", (bw - 2).toFixed(1)); r.setAttribute("height", bh.toFixed(1)); r.setAttribute("class", "bar-n");
        svg.appendChild(r);
      });
      const pts = lane.occupancy_pct.map((o, i) => (o == null ? null : `${(i * bw + bw / 2).toFixed(1)},${(90 - Math.min(o, 100) * 0.8).toFixed(1)}`)).filter(Boolean);
      if (pts.length > 1) {
        const line = document.createElementNS(SVG, "polyline");
        line.setAttribute("points", pts.join(" ")); line.setAttribute("class", "occ-line");
        svg.appendChild(line);
      }
      fig.append(cap, svg);
      charts.appendChild(fig);
    }
    const faults = $("#dv-fault-rows");
    faults.replaceChildren();
    for (const f of d.faults) row(faults, [timeText(f.at), FAULT[f.code] || f.code, f.detail.replace(/^lane /, "线圈 "), f.active ? "发生" : "已恢复"]).className = f.active ? "error" : "";
    if (!d.faults.length) row(faults, ["近 24 小时无故障", "", "", ""]);
  }

  // Telemetry: each numeric field the node measures, its day as a line
  // (true/false as 1/0), one small chart per field (their scales differ).
  const TELEMETRY = { sessions: "使用中的会话", outbox_depth: "待发送消息数", central_http: "中心接口可用", link: "消息链路在线",
    battery: "电量（%）", cpu_temp_c: "处理器温度（℃）", disk_free_mb: "剩余存储（MB）" };
  function telemetry(t) {
    const box = $("#dv-telemetry");
    box.replaceChildren();
    if (!t) return;
    const keys = Object.keys(t.series);
    if (!keys.length) { box.appendChild(Object.assign(document.createElement("p"), { textContent: "近 24 小时没有遥测数据。" })); return; }
    const from = Date.parse(t.since), to = from + 24 * 3600e3;
    for (const key of keys) {
      const points = t.series[key].map(([at, v]) => [Date.parse(at), v]);
      const name = TELEMETRY[key] || key;
      const fig = charts.time({ from, to, height: 90, series: [{ name, kind: "line", points }] });
      fig.classList.add("telemetry");
      fig.dataset.field = key;
      const cap = document.createElement("figcaption");
      const last = points[points.length - 1];
      cap.textContent = `遥测 · ${name}：最新 ${last[1]}（${timeText(new Date(last[0]).toISOString())}），共 ${points.length} 次上报`;
      fig.prepend(cap);
      box.appendChild(fig);
    }
  }

  async function load(id) {
    current = { id };
    $("#dv-title").textContent = `设备 ${id}`;
    $("#dv-msg").textContent = "";
    const o = await api(`/api/v1/devices/${encodeURIComponent(id)}/overview`);
    current.device = o.device;
    facts(o.device);
    const certs = $("#dv-cert-rows");
    certs.replaceChildren();
    for (const c of o.certificates) row(certs, [c.serial, timeText(c.issued_at), timeText(c.not_after), c.revoked_at ? "已吊销 " + timeText(c.revoked_at) : (Date.parse(c.not_after) < Date.now() ? "已过期" : "有效")]);
    if (!o.certificates.length) row(certs, ["未签发（未经入网流程）", "", "", ""]);
    const ota = $("#dv-ota-rows");
    ota.replaceChildren();
    for (const n of o.ota) row(ota, [`#${n.rollout} ${n.release}`, WAVE[n.state] || n.state, FW[n.fw_state] || n.fw_state || "—", labels.reason(n.reason), timeText(n.updated_at)]);
    if (!o.ota.length) row(ota, ["没有升级记录", "", "", "", ""]);
    const ev = $("#dv-event-rows");
    ev.replaceChildren();
    if (o.events === null) row(ev, ["无权查看此设备的事件", "", ""]);
    else for (const e of o.events) row(ev, [timeText(e.ts), e.type, JSON.stringify(e.body).slice(0, 120)]);
    chart(o.hourly);
    telemetry(o.telemetry);
    detector(o.detector);
    try { showConfig(await api(`/api/v1/devices/${encodeURIComponent(id)}/config`)); }
    catch (e) { $("#dv-drift").textContent = "无权查看配置"; }
  }

  // A device change from the live stream: presence, version, health, and
  // the configuration the node now reports (drift recomputed on the spot).
  function onLive(change) {
    if (!current || change.id !== current.id || $("#page-device").hidden) return;
    if ("online" in change) $('#dv-facts [data-field="online"]').textContent = change.online ? "在线" : "离线";
    if (change.last_seen) $('#dv-facts [data-field="last_seen"]').textContent = timeText(change.last_seen);
    if (change.version) $('#dv-facts [data-field="version"]').textContent = change.version;
    if (change.health_status) $('#dv-facts [data-field="health"]').textContent = labels.of("health", change.health_status);
    if (current.config && ("reported_version" in change || "config_status" in change)) {
      const reported = {
        version: change.reported_version ?? current.config.reported.version,
        status: change.config_status ?? current.config.reported.status,
        reason: change.config_reason ?? current.config.reported.reason,
      };
      showConfig({ ...current.config, reported });
    }
  }

  async function command(form) {
    const f = Object.fromEntries(new FormData(form));
    let args = {};
    try { args = f.args ? JSON.parse(f.args) : {}; } catch (e) { $("#dv-msg").textContent = "参数不是有效的 JSON"; return; }
    const li = document.createElement("li");
    li.textContent = `${new Date().toLocaleTimeString("zh-CN", { hour12: false })} ${f.name} → 等待回复…`;
    $("#dv-replies").prepend(li);
    try {
      const r = await api(`/api/v1/devices/${encodeURIComponent(current.id)}/commands/${encodeURIComponent(f.name)}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ args, timeout_s: 10 }),
      });
      li.textContent = li.textContent.replace("等待回复…", "回复：" + JSON.stringify(r.reply ?? r));
      li.className = "ok";
    } catch (e) {
      li.textContent = li.textContent.replace("等待回复…", "失败：" + e.message);
      li.className = "error";
    }
  }

  $("#dv-command").addEventListener("submit", (ev) => { ev.preventDefault(); command(ev.target); });
  $("#dv-back").addEventListener("click", () => { location.hash = "#devices"; });
  return { load, onLive };
})();
