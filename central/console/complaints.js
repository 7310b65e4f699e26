// 投诉受理: the desk (accept, triage, assign, answer, call back, close), the
// departments (sign, return, work, extend once, reply), supervisors (overdue
// board, statistics and export) and the kiosk content editor.
"use strict";

const complaintsPage = (() => {
  const LEVEL = { ok: "正常", warning: "预警", urge: "催办", escalate: "督办升级" };
  const ACTIONS = {
    complaints: { pending: [["accept", "受理"], ["reject", "不予受理"], ["answer", "直接答复"]], accepted: [["triage", "分流"], ["answer", "直接答复"]], returned: [["triage", "重新分流"]], triaged: [["assign", "转办"]], reopened: [["assign", "转办"]], replied: [["visit", "回访"], ["close", "办结"], ["redo", "重办"]], answered: [["visit", "回访"], ["close", "办结"]], visited: [["close", "办结"], ["redo", "重办"]] },
    department: { assigned: [["sign", "签收"], ["return", "退单"]], signed: [["start", "开始办理"], ["reply", "答复"]], in_progress: [["reply", "答复"], ["extend", "申请延期"]] },
  };
  let role = "complaints", selected = null;

  function cell(tr, v) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); return td; }

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
      for (const v of [c.code || `#${c.id}`, c.service_code, c.state_label, c.department, timeText(c.received_at), c.due_at ? timeText(c.due_at) : ""]) cell(tr, v);
      const lv = cell(tr, LEVEL[c.supervision]);
      lv.className = "level " + c.supervision;
      tr.addEventListener("click", () => show(c.id));
      return tr;
    }));
  }

  async function show(id) {
    const c = await api(`/api/v1/complaints/${id}`);
    selected = c;
    $("#complaint-detail").hidden = false;
    $("#cd-title").textContent = `${c.code || "#" + c.id} · ${c.state_label}`;
    $("#cd-body").textContent = `${c.description}（${c.place || "未填地点"}）` + (c.reply ? `\n答复：${c.reply}` : "");
    $("#cd-steps").replaceChildren(...c.steps.map((s) => { const li = document.createElement("li"); li.textContent = `${timeText(s.at)} ${s.actor} ${s.action} → ${s.to}${s.note ? "：" + s.note : ""}`; return li; }));
    const mine = (ACTIONS[role] || {})[c.state] || [];
    $("#cd-actions").replaceChildren(...mine.map(([action, label]) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.dataset.action = action;
      b.addEventListener("click", () => act(action));
      return b;
    }));
  }

  async function act(action) {
    const body = { note: $("#cd-note").value, department: $("#cd-department").value };
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
      for (const v of [r.group, r.received, pct(r["响应率"]), pct(r["解决率"]), pct(r["满意率"])]) cell(tr, v);
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
      for (const v of [c.kind, c.title, c.body.slice(0, 40)]) cell(tr, v);
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "撤下";
      b.addEventListener("click", async () => { await api(`/api/v1/kiosk-content/${c.id}`, { method: "DELETE" }); loadContent(); });
      cell(tr, "").appendChild(b);
      return tr;
    }));
  }

  async function load(me) {
    role = me.role === "department" ? "department" : "complaints";
    await loadList();
    if (role === "complaints") { await loadStats(); await loadContent().catch(() => {}); }
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
