// 交通信号: junctions with their measured stage flows and the plan in force;
// compute a plan (one junction or a corridor's green wave), review, push it
// to the cabinet, watch the cabinet's answer live, roll back in one click.
"use strict";

const signalsPage = (() => {
  const STATE = { proposed: "待推送", pushed: "已下发", accepted: "信号机已接受", applied: "已生效", refused: "被拒绝", failed: "执行失败" };
  const METHOD = { optimise: "延误最小", webster: "韦伯斯特", green_wave: "干线绿波", adaptive: "自适应", rollback: "回退", manual: "手工" };
  let selected = null;

  function cell(tr, v) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); return td; }
  function post(path, body) { return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }); }

  async function loadJunctions() {
    const rows = await api("/api/v1/signals/junctions");
    $("#junction-rows").replaceChildren(...rows.map((j) => {
      const tr = document.createElement("tr");
      tr.dataset.junction = j.id;
      const plan = j.plan ? j.plan.plan : null;
      for (const v of [j.name || j.id, j.corridor || "—", j.stage_flows_vph.join(" / "), j.plan ? j.plan.version : "时段方案",
        plan ? plan.cycle + " 秒" : "—", plan ? plan.greens.join(" / ") : "—", j.adaptive ? "是" : "否"]) cell(tr, v);
      tr.addEventListener("click", () => show(j));
      return tr;
    }));
  }

  async function show(j) {
    selected = j;
    $("#junction-detail").hidden = false;
    $("#jd-title").textContent = `${j.name || j.id}（${j.id}）`;
    $("#jd-corridor").hidden = !j.corridor;
    await loadPlans();
  }

  async function loadPlans() {
    const plans = await api(`/api/v1/signals/junctions/${encodeURIComponent(selected.id)}/plans`);
    $("#plan-rows").replaceChildren(...plans.map(planRow));
  }

  function planRow(p) {
    const tr = document.createElement("tr");
    tr.id = "plan-" + p.id;
    for (const v of [p.version, METHOD[p.method] || p.method, p.plan.cycle, p.plan.greens.join(" / "), p.plan.offset]) cell(tr, v);
    const st = cell(tr, (STATE[p.state] || p.state) + (p.reason ? `：${p.reason}` : ""));
    st.className = "plan-" + p.state;
    const td = document.createElement("td");
    if (p.state === "proposed") {
      const b = document.createElement("button"); b.type = "button"; b.textContent = "推送";
      b.addEventListener("click", () => push(p.id));
      td.append(b);
    }
    tr.append(td);
    return tr;
  }

  async function push(id) {
    try { const p = await post(`/api/v1/signals/plans/${id}/push`); $("#signals-msg").textContent = `${p.version}：${STATE[p.state] || p.state}${p.reason ? "，" + p.reason : ""}`; }
    catch (e) { $("#signals-msg").textContent = e.message; }
    await loadPlans(); await loadJunctions();
  }

  document.querySelectorAll("[data-compute]").forEach((b) => b.addEventListener("click", async () => {
    try { const p = await post(`/api/v1/signals/junctions/${encodeURIComponent(selected.id)}/compute`, { method: b.dataset.compute }); $("#signals-msg").textContent = `已计算 ${p.version}，请核对后推送`; }
    catch (e) { $("#signals-msg").textContent = e.message; }
    await loadPlans();
  }));
  $("#jd-corridor").addEventListener("click", async () => {
    try { const rows = await post(`/api/v1/signals/corridors/${encodeURIComponent(selected.corridor)}/compute`); $("#signals-msg").textContent = `干线 ${selected.corridor}：已计算 ${rows.length} 个路口的绿波方案`; }
    catch (e) { $("#signals-msg").textContent = e.message; }
    await loadPlans();
  });
  $("#jd-rollback").addEventListener("click", async () => {
    try { const p = await post(`/api/v1/signals/junctions/${encodeURIComponent(selected.id)}/rollback`); $("#signals-msg").textContent = `已回退：${p.version} ${STATE[p.state] || p.state}`; }
    catch (e) { $("#signals-msg").textContent = e.message; }
    await loadPlans(); await loadJunctions();
  });

  function onLive(change) {
    if (selected && change.junction === selected.id) {
      const old = document.getElementById("plan-" + change.id);
      if (old) old.replaceWith(planRow(change)); else loadPlans();
    }
    loadJunctions();
  }

  async function load() { await loadJunctions(); }
  return { load, onLive };
})();
