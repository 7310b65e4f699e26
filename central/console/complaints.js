// 投诉受理: the desk (accept, triage, assign, answer, call back, close), the
// departments (sign, return, work, extend once, reply), supervisors (overdue
// board, statistics and export) and the kiosk content editor. An operator
// who is both (the demo's admin) gets both sets of buttons.
"use strict";

const complaintsPage = (() => {
  const LEVEL = { ok: "正常", warning: "预警", urge: "催办", escalate: "督办升级" };
  const KIND = { notice: "政务公开", guide: "办事指南", place: "地名", utility: "公用事业" };
  const SOURCE = { kiosk: "信息亭", desk: "受理台", open311: "网上（Open311）" };
  const DESK = { pending: [["accept", "受理"], ["reject", "不予受理"], ["answer", "直接答复"]], accepted: [["triage", "分流"], ["answer", "直接答复"]], returned: [["triage", "重新分流"]], triaged: [["assign", "转办"]], reopened: [["assign", "转办"]], replied: [["visit", "回访"], ["close", "办结"], ["redo", "重办"]], answered: [["visit", "回访"], ["close", "办结"]], visited: [["close", "办结"], ["redo", "重办"]] };
  const DEPT = { assigned: [["sign", "签收"], ["return", "退单"]], signed: [["start", "开始办理"], ["reply", "答复"]], in_progress: [["reply", "答复"], ["extend", "申请延期"]] };
  // Which sets of buttons each role sees; the server checks again.
  const SETS = { complaints: [DESK], department: [DEPT], admin: [DESK, DEPT] };
  let role = "complaints", selected = null, departments = [], services = [], mapHandle = null;

  function cell(tr, v) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); return td; }
  const deptName = (code) => (departments.find((d) => d.code === code) || {}).name || code || "";
  const serviceName = (code) => (services.find((s) => s.code === code) || {}).name || code || "";

  async function loadSetup() {
    [departments, services] = await Promise.all([
      api("/api/v1/complaints/setup/departments").catch(() => []),
      api("/api/v1/complaints/setup/services").catch(() => []),
    ]);
    const pick = $("#cd-department");
    const blank = document.createElement("option");
    blank.value = ""; blank.textContent = "（选择承办部门）";
    pick.replaceChildren(blank, ...departments.map((d) => {
      const o = document.createElement("option"); o.value = d.code; o.textContent = d.name; return o;
    }));
  }

  async function loadList() {
    const f = Object.fromEntries(new FormData($("#complaint-filter")));
    const params = new URLSearchParams({ limit: 100 });
    if (f.state) params.set("state", f.state);
    if (f.overdue) params.set("overdue", "true");
    const page = await api("/api/v1/complaints?" + params);
    $("#complaint-rows").replaceChildren(...page.items.map((c) => {
      const tr = document.createElement("tr");
      tr.dataset.code = c.code;
      tr.dataset.id = c.id;
      // Departments are not shown the 查询码 (the citizen's own key): the id stands in.
      for (const v of [c.code || `#${c.id}`, serviceName(c.service_code), c.state_label, deptName(c.department), timeText(c.received_at), c.due_at ? timeText(c.due_at) : ""]) cell(tr, v);
      const lv = cell(tr, LEVEL[c.supervision]);
      lv.className = "level " + c.supervision;
      tr.addEventListener("click", () => show(c.id));
      return tr;
    }));
  }

  // The place the citizen tapped on the kiosk's map, on the county map
  // (the shared MapLibre component); in words too, and alone where the map
  // component is missing.
  async function drawPlace(c) {
    const has = c.lat != null && c.lon != null;
    $("#cd-place").textContent = has
      ? `位置：${c.place || "地图选点"}（东经 ${c.lon.toFixed(5)}，北纬 ${c.lat.toFixed(5)}）`
      : `位置：${c.place || "未填地点"}（未在地图上选点）`;
    const box = $("#cd-map");
    box.hidden = !has;
    if (!has || typeof countyMap === "undefined" || !countyMap.create) return;
    mapHandle = mapHandle || await countyMap.create(box, { label: "投诉位置", zoom: 15 });
    mapHandle.map.resize();
    mapHandle.marker("complaint", c.lon, c.lat, { className: "complaint-dot", title: c.place || "投诉位置" });
    mapHandle.fit([[c.lon, c.lat]]);
  }

  async function show(id) {
    const c = await api(`/api/v1/complaints/${id}`);
    selected = c;
    $("#complaint-detail").hidden = false;
    $("#complaint-detail").dataset.id = c.id;
    $("#cd-title").textContent = `${c.code || "#" + c.id} · ${c.state_label}`;
    const who = c.real_name ? (c.name ? `实名：${c.name} ${c.phone}` : "实名（本岗位不显示姓名电话）") : "匿名";
    $("#cd-meta").textContent = `${serviceName(c.service_code)} · 来源：${SOURCE[c.source] || c.source}${c.device ? "（" + c.device + "）" : ""} · ${who}` + (c.department ? ` · 承办：${deptName(c.department)}` : "");
    $("#cd-body").textContent = c.description + (c.reply ? `\n答复：${c.reply}` : "");
    drawPlace(c).catch(() => {});
    $("#cd-steps").replaceChildren(...c.steps.map((s) => {
      const li = document.createElement("li");
      const actor = s.actor === "system" ? "系统" : s.actor;
      li.textContent = `${timeText(s.at)} ${actor} ${s.action_label || s.action} → ${s.to_label || s.to}${s.note ? "：" + s.note : ""}`;
      return li;
    }));
    // Triage and assignment start from the request type's own department.
    if (!c.department) {
      const t = services.find((s) => s.code === c.service_code);
      $("#cd-department").value = t && t.department ? t.department : "";
    } else $("#cd-department").value = c.department;
    const mine = (SETS[role] || []).flatMap((set) => set[c.state] || []);
    $("#cd-actions").replaceChildren(...mine.map(([action, label]) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.dataset.action = action;
      b.addEventListener("click", () => act(action));
      return b;
    }));
    $("#cd-department-row").hidden = !mine.some(([a]) => a === "triage" || a === "assign");
  }

  async function act(action) {
    const department = $("#cd-department").value;
    if ((action === "assign" || action === "triage") && !department) { $("#complaints-msg").textContent = "请先选择承办部门"; return; }
    const body = { note: $("#cd-note").value, department };
    try {
      await api(`/api/v1/complaints/${selected.id}/${action}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      $("#cd-note").value = "";
      $("#complaints-msg").textContent = "已办理";
      await show(selected.id); await loadList();
    } catch (e) { $("#complaints-msg").textContent = e.message; }
  }

  async function loadStats() {
    const by = $("#stats-by").value;
    const rows = await api(`/api/v1/complaints/reports/stats?by=${by}`);
    const pct = (v) => (v == null ? "—" : (v * 100).toFixed(0) + "%");
    $("#stats-rows").replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      const group = by === "department" ? deptName(r.group) || "（未转办）" : by === "category" ? serviceName(r.group) : r.group;
      for (const v of [group, r.received, pct(r["响应率"]), pct(r["解决率"]), pct(r["满意率"])]) cell(tr, v);
      return tr;
    }));
  }

  async function download(fmt) {
    const by = $("#stats-by").value;
    const res = await authFetch(`/api/v1/complaints/reports/stats?by=${by}&fmt=${fmt}`);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await res.blob()); a.download = `stats-${by}.${fmt}`; a.click();
  }

  async function loadContent() {
    const rows = await api("/api/v1/kiosk-content");
    $("#content-rows").replaceChildren(...rows.map((c) => {
      const tr = document.createElement("tr");
      for (const v of [KIND[c.kind] || c.kind, c.title, c.body.slice(0, 40)]) cell(tr, v);
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "撤下";
      b.addEventListener("click", async () => { await api(`/api/v1/kiosk-content/${c.id}`, { method: "DELETE" }); loadContent(); });
      cell(tr, "").appendChild(b);
      return tr;
    }));
  }

  async function load(me) {
    // Nothing of the last operator's view stays on screen for the next one.
    $("#complaint-rows").replaceChildren();
    $("#complaint-rows").dataset.for = "";
    $("#complaint-detail").hidden = true;
    selected = null;
    role = SETS[me.role] ? me.role : "complaints";
    await loadSetup();
    await loadList();
    $("#complaint-rows").dataset.for = me.username;
    if (role !== "department") { await loadStats(); await loadContent().catch(() => {}); }
  }

  function wire() {
    $("#complaint-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadList(); });
    $("#stats-by").addEventListener("change", loadStats);
    $("#stats-csv").addEventListener("click", () => download("csv"));
    $("#stats-xlsx").addEventListener("click", () => download("xlsx"));
    $("#content-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(ev.target));
      await api("/api/v1/kiosk-content", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ kind: f.kind, title: f.title, body: f.body }) });
      ev.target.reset(); loadContent();
    });
  }

  return { load, wire, onLive: () => loadList() };
})();

complaintsPage.wire();
