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
    // During the change to the next stage the stage is still this one: say
    // so, and keep its timer running (stageSeconds), rather than "第 1 阶段
    // 0 秒" while the heads show amber or all red.
    const lamps = Object.values(s.groups || {}).map((g) => g.state);
    const change = lamps.includes("yellow") ? "黄灯过渡" : lamps.length && !lamps.includes("green") ? "全红清空" : "";
    const stage = change ? `第 ${s.stage} 阶段结束 · ${change}` : `第 ${s.stage} 阶段`;
    return `${stage} ${stageSeconds(s)} 秒 · ${s.source === "central" ? "中心方案 " + s.plan : "时段方案"}`;
  }

  // Seconds since the stage began, by this page's clock. A controller may
  // restart its own count at the change (an actuated one counts the amber
  // from 0): within one stage the count only goes forward; a new stage, mode
  // or plan starts it again from what the controller says.
  function stageSeconds(s) { return Math.max(0, Math.round((Date.now() - s.stageFrom) / 1000)); }
  function keepStageClock(before, s, now = Date.now()) {
    const told = now - (s.into_s || 0) * 1000;
    const same = before && before.stage === s.stage && before.mode === s.mode && before.plan === s.plan && before.stageFrom != null;
    s.stageFrom = same ? Math.min(before.stageFrom, told) : told;
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
    keepStageClock(before, s);
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
    await Promise.all([loadPlans(), loadHistory()]);
  }

  // -- the junction's day: its cycle and splits, its detectors loop by loop --------
  const FAULT = { stuck_on: "线圈常占（停车或短路）", stuck_off: "线圈长时间无车（断线）", chattering: "信号抖动（感应不稳）", lane_fault: "检测卡报线圈故障" };

  async function loadHistory() {
    const id = selected.id;
    const h = await api(`/api/v1/signals/junctions/${encodeURIComponent(id)}/history?hours=24`);
    if (!selected || selected.id !== id) return;
    const from = Date.parse(h.since), to = from + h.hours * 3600e3;
    planChart(h.plans, from, to);
    $("#jd-detectors").replaceChildren(...(h.detectors.length ? h.detectors.map((d) => detectorCard(d, from, to)) : [Object.assign(document.createElement("p"), { textContent: "此路口未配置检测器。" })]));
  }

  // Cycle and each stage's green as steps: a plan holds until the next one.
  function planChart(plans, from, to) {
    const box = $("#jd-plan-chart");
    if (!plans.length) { box.replaceChildren(Object.assign(document.createElement("p"), { textContent: "近 24 小时一直按信号机时段方案运行（无中心方案）。" })); return; }
    const at = (p) => Math.max(from, Date.parse(p.from));
    const stages = Math.max(...plans.map((p) => p.greens.length));
    const series = [{ name: "周期", kind: "step", points: plans.map((p) => [at(p), p.cycle]) }];
    for (let k = 0; k < stages; k++) series.push({ name: `第 ${k + 1} 阶段绿灯`, kind: "step", points: plans.map((p) => [at(p), p.greens[k] ?? null]) });
    const fig = charts.time({ from, to, series, unit: "秒",
      label: plans.map((p) => `${timeText(p.from)} 起 ${p.version}：周期 ${p.cycle} 秒，绿灯 ${p.greens.join("/")} 秒${p.actuated ? "（上限，感应）" : ""}`).join("；") });
    fig.id = "jd-plan-figure";
    const cap = document.createElement("figcaption");
    const now = plans[plans.length - 1];
    cap.textContent = `现行 ${now.version}：周期 ${now.cycle} 秒，绿信比 ${now.greens.map((g) => Math.round((100 * g) / now.cycle) + "%").join(" / ")}` + (now.actuated ? "（感应控制，绿灯为上限）" : "") + `；近 24 小时 ${plans.length} 个方案`;
    fig.prepend(cap);
    box.replaceChildren(fig);
  }

  // One detector: each loop's stage, approach, newest minute and faults; its
  // day as a chart per loop (vehicles each hour, mean occupancy).
  function detectorCard(d, from, to) {
    const card = document.createElement("div");
    card.className = "detector-card";
    card.dataset.detector = d.device;
    const h = document.createElement("h5");
    const link = document.createElement("a");
    link.href = "#device/" + encodeURIComponent(d.device); link.textContent = d.device;
    h.append("检测器 ", link, d.online == null ? "（未登记）" : d.online ? "（在线）" : "（离线）");
    card.appendChild(h);
    const active = new Map();
    for (const f of d.faults) if (f.active) active.set(f.detail.replace(/^lane /, ""), (active.get(f.detail.replace(/^lane /, "")) || []).concat(FAULT[f.code] || f.code));
    const latest = new Map(d.latest.map((l) => [String(l.lane), l]));
    const table = document.createElement("table");
    table.innerHTML = "<thead><tr><th>线圈</th><th>阶段</th><th>进口</th><th>最近一分钟</th><th>占有率</th><th>故障</th></tr></thead>";
    const body = document.createElement("tbody");
    const lanes = [...new Set([...Object.keys(d.loops), ...latest.keys()])].sort((a, b) => a - b);
    for (const lane of lanes) {
      const loop = d.loops[lane] || {}, l = latest.get(lane);
      const side = { W: "西进口", E: "东进口", N: "北进口", S: "南进口" }[loop.approach] || loop.approach || "—";
      const tr = document.createElement("tr");
      tr.dataset.lane = lane;
      for (const v of [`线圈 ${lane}`, loop.stage ? `第 ${loop.stage} 阶段` : "—", side, l ? `${l.count} 辆` : "—", l && l.occupancy_pct != null ? l.occupancy_pct + "%" : "—", (active.get(lane) || []).join("、") || "正常"]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      if (active.has(lane)) tr.className = "error";
      body.appendChild(tr);
    }
    table.appendChild(body);
    card.appendChild(table);
    for (const lane of d.lanes) {
      const hour = (i) => from + i * 3600e3;
      const total = lane.counts.reduce((a, b) => a + b, 0);
      const fig = charts.time({ from, to, unit: "辆/时", unit2: "%", series: [
        { name: "每小时车辆数", kind: "bar", points: lane.counts.map((n, i) => [hour(i), n]), unitText: " 辆" },
        { name: "平均占有率", kind: "line", axis: 2, points: lane.occupancy_pct.map((o, i) => [hour(i) + 1800e3, o]) },
      ] });
      fig.classList.add("loop-day");
      fig.dataset.lane = lane.lane;
      const cap = document.createElement("figcaption");
      cap.textContent = `线圈 ${lane.lane}：近 24 小时 ${total} 辆`;
      fig.prepend(cap);
      card.appendChild(fig);
    }
    if (!d.lanes.length) card.appendChild(Object.assign(document.createElement("p"), { textContent: "近 24 小时没有检测数据。" }));
    const past = d.faults.filter((f) => !f.active);
    if (past.length) {
      const p = document.createElement("p");
      p.className = "fault-history";
      p.textContent = "已恢复的故障：" + past.map((f) => `${timeText(f.at)} ${f.detail.replace(/^lane /, "线圈 ")} ${FAULT[f.code] || f.code}`).join("；");
      card.appendChild(p);
    }
    return card;
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
  return { load, onLive, onSignal, phaseText };
})();
