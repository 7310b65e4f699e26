// 交通信号: junctions with their measured stage flows and the plan in force;
// compute a plan (one junction or a corridor's green wave), review, push it
// to the cabinet, watch the cabinet's answer live, roll back in one click.
"use strict";

const signalsPage = (() => {
  const STATE = { proposed: "待推送", pushed: "已下发", accepted: "信号机已接受", applied: "已生效", refused: "被拒绝", failed: "执行失败" };
  const METHOD = { optimise: "延误最小", webster: "韦伯斯特", green_wave: "干线绿波", adaptive: "自适应", rollback: "回退", manual: "手工" };
  const MODE = { plan: "按方案运行", flash: "黄闪", all_red: "全红", hold: "锁定相位" };
  const LAMP = { green: "绿", yellow: "黄", red: "红", flash: "黄闪", dark: "灭" };
  const SIDES = [["W", "西进口"], ["E", "东进口"], ["N", "北进口"], ["S", "南进口"]];
  let selected = null;
  let junctionsList = [];
  let map = null;  // the county map (countyMap handle)
  let mapReady = null;
  const live = {}; // junction -> its cabinet's running state (each second)

  function phaseText(s) {
    if (!s) return "—";
    if (s.latched) return `黄闪（冲突监视：${s.latched}）`;
    const mode = MODE[s.mode] || s.mode || "—";
    if (s.mode !== "plan") return mode;
    // The controller's clock restarts at the change to the next stage: say
    // so, rather than "第 1 阶段 0 秒" while the heads show amber or all red.
    const lamps = Object.values(s.groups || {}).map((g) => g.state);
    const change = lamps.includes("yellow") ? "黄灯过渡" : lamps.length && !lamps.includes("green") ? "全红清空" : "";
    const stage = change ? `第 ${s.stage} 阶段结束 · ${change}` : `第 ${s.stage} 阶段`;
    return `${stage} ${Math.round(s.into_s)} 秒 · ${s.source === "central" ? "中心方案 " + s.plan : "时段方案"}`;
  }

  function cell(tr, v) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); return td; }
  function post(path, body) { return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }); }

  async function loadJunctions() {
    const rows = await api("/api/v1/signals/junctions");
    junctionsList = rows;
    $("#junction-rows").replaceChildren(...rows.map((j) => {
      const tr = document.createElement("tr");
      tr.dataset.junction = j.id;
      const plan = j.plan ? j.plan.plan : null;
      const flows = j.stage_flows_vph.join(" / ");
      cell(tr, j.name || j.id); cell(tr, j.corridor || "—"); cell(tr, flows);
      cell(tr, phaseText(live[j.id])).className = "phase";
      for (const v of [j.plan ? j.plan.version : "时段方案", plan ? plan.cycle + " 秒" : "—",
        plan ? plan.greens.join(" / ") + (plan.actuated ? "（上限，感应）" : "") : "—", j.adaptive ? "是" : "否"]) cell(tr, v);
      tr.addEventListener("click", () => show(j));
      return tr;
    }));
    await drawMap();
  }

  // Junctions on the county map, coloured by what their cabinets run now.
  async function drawMap() {
    mapReady = mapReady || countyMap.create($("#signals-map"));
    map = await mapReady;
    const keep = new Set();
    for (const j of junctionsList.filter((x) => x.lat != null)) {
      const s = live[j.id];
      keep.add("j-" + j.id);
      const fresh = !document.getElementById("jm-" + j.id);
      const dot = map.marker("j-" + j.id, j.lon, j.lat, { className: "junction-dot " + (s ? (s.latched ? "flash" : s.mode) : ""), title: j.name || j.id, data: { junction: j.id } });
      if (fresh) {
        dot.addEventListener("click", () => show(j));
        const label = document.createElement("span");
        label.id = "jm-" + j.id;
        label.dataset.name = j.name || j.id;
        dot.appendChild(label);
      }
      const label = document.getElementById("jm-" + j.id);
      if (label) { label.textContent = markText(j.name || j.id, s); if (!label.isConnected) dot.appendChild(label); }
    }
    map.prune("j-", keep);
  }

  function markText(name, s) { return s && s.mode === "plan" ? `${name} · 第${s.stage}阶段` : name; }

  function heads(s) {
    $("#jd-heads").replaceChildren(...SIDES.map(([a, name]) => {
      const tr = document.createElement("tr");
      cell(tr, name);
      for (const m of ["l", "s", "r"]) {
        const g = s && s.groups ? s.groups[a + m] : null;
        const td = cell(tr, g ? LAMP[g.state] || g.state : "—");
        td.className = "lamp " + (g ? g.state : "");
        td.dataset.group = a + m;
      }
      return tr;
    }));
    $("#jd-running").textContent = s ? phaseText(s) : "等待信号机上报…";
  }

  function onSignal(s) {
    const before = live[s.junction];
    live[s.junction] = s;
    const tr = document.querySelector(`#junction-rows tr[data-junction="${CSS.escape(s.junction)}"]`);
    if (tr) tr.querySelector(".phase").textContent = phaseText(s);
    if (selected && selected.id === s.junction) heads(s);
    const dot = document.querySelector(`#signals-map .junction-dot[data-junction="${CSS.escape(s.junction)}"]`);
    if (dot) { dot.classList.remove("plan", "flash", "all_red", "hold"); dot.classList.add(s.latched ? "flash" : s.mode); }
    const label = document.getElementById("jm-" + s.junction);
    if (label && (!before || before.stage !== s.stage || before.mode !== s.mode)) label.textContent = markText(label.dataset.name, s);
  }

  async function show(j) {
    selected = j;
    $("#junction-detail").hidden = false;
    $("#jd-title").textContent = `${j.name || j.id}（${j.id}）`;
    $("#jd-corridor").hidden = !j.corridor;
    heads(live[j.id]);
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
  return { load, onLive, onSignal };
})();
