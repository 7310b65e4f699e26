// 固件升级: publish signed releases, roll them out in waves, watch each wave
// fill (live), pause/resume/cancel, see every node's last report, pin devices.
"use strict";

const ota = (() => {
  const STATE = { running: "推送中", paused: "已暂停", cancelled: "已取消", done: "已完成" };
  const FW = { queued: "已排队", deferred: "推迟", downloading: "下载中", installed: "已安装", trial: "试运行", committed: "已生效", rolled_back: "已回滚", failed: "失败" };
  const WAVE = { pending: "等待", assigned: "进行中", succeeded: "成功", failed: "失败" };
  const rollouts = new Map();
  const nodes = new Map();  // rollout id → Map(device → its last report)
  let shown = null;

  function cell(tr, v) { const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td); return td; }
  function size(n) { return n > 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB"; }
  function post(path, body) { return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) }); }

  async function loadReleases() {
    const releases = await api("/api/v1/ota/releases");
    $("#release-rows").replaceChildren(...releases.map((r) => {
      const tr = document.createElement("tr");
      cell(tr, r.name); cell(tr, size(r.length));
      cell(tr, r.deltas.map((d) => `自 ${d.from.replace(/^baling-|\.tar$/g, "")}：${size(d.length)}`).join("；") || "—");
      return tr;
    }));
    $("#rollout-release").replaceChildren(...releases.map((r) => {
      const o = document.createElement("option"); o.value = r.name; o.textContent = r.name; o.dataset.kind = r.kind; o.dataset.version = r.version; return o;
    }));
  }

  function card(r) {
    const div = document.createElement("div");
    div.className = "card rollout"; div.id = "rollout-" + r.id;
    const h = document.createElement("h3");
    h.append(`#${r.id} ${r.release} → ${labels.of("kind", r.kind)} `);
    const st = document.createElement("span"); st.className = "state-" + r.state; st.dataset.field = "state"; st.textContent = STATE[r.state] || r.state; h.append(st);
    div.append(h);
    const p = document.createElement("p");
    p.textContent = `已触达 ${r.touched}/${r.devices} 台` + (r.reason ? `；${labels.reason(r.reason)}` : "");
    div.append(p);
    div.append(notes(r.id));
    for (const w of r.waves) {
      const row = document.createElement("div"); row.className = "wave";
      const label = document.createElement("span"); label.textContent = `第 ${w.wave} 批`;
      const bar = document.createElement("div"); bar.className = "bar"; bar.setAttribute("role", "img");
      bar.setAttribute("aria-label", `第 ${w.wave} 批：成功 ${w.succeeded}，失败 ${w.failed}，进行中 ${w.assigned}，等待 ${w.pending}`);
      for (const k of ["succeeded", "failed", "assigned"]) {
        const s = document.createElement("span"); s.className = k; s.style.width = (100 * w[k] / w.size) + "%"; bar.append(s);
      }
      const counts = document.createElement("span"); counts.textContent = `✔${w.succeeded} ✘${w.failed} ⋯${w.assigned} / ${w.size}`;
      row.append(label, bar, counts); div.append(row);
    }
    const actions = document.createElement("div"); actions.className = "row";
    const buttons = r.state === "running" ? [["pause", "暂停"], ["cancel", "取消"]] : r.state === "paused" ? [["resume", "继续"], ["cancel", "取消"]] : [];
    for (const [action, label] of [...buttons, ["nodes", "查看设备"]]) {
      const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.dataset.action = action;
      b.addEventListener("click", () => (action === "nodes" ? showNodes(r.id) : control(r.id, action)));
      actions.append(b);
    }
    div.append(actions);
    return div;
  }

  // Each node that is held up or refused, with its reason, on the card itself.
  function notes(id) {
    const ul = document.createElement("ul");
    ul.className = "node-notes";
    const held = [...(nodes.get(id) || new Map()).values()].filter((n) => n.state !== "succeeded" && (n.reason || ["deferred", "failed", "rolled_back"].includes(n.fw_state)));
    for (const n of held.slice(0, 10)) {
      const li = document.createElement("li");
      li.dataset.device = n.device;
      li.textContent = `${n.device}：${FW[n.fw_state] || n.fw_state || WAVE[n.state] || n.state}` + (n.reason ? ` · ${labels.reason(n.reason)}` : "");
      li.className = n.state === "failed" || n.fw_state === "failed" || n.fw_state === "rolled_back" ? "failed" : "held";
      ul.append(li);
    }
    if (held.length > 10) ul.append(Object.assign(document.createElement("li"), { textContent: `等 ${held.length} 台` }));
    return ul;
  }

  async function loadNodes(id) {
    const list = await api(`/api/v1/ota/rollouts/${id}/nodes`);
    nodes.set(id, new Map(list.map((n) => [n.device, n])));
    return list;
  }

  function render() {
    const list = [...rollouts.values()].sort((a, b) => b.id - a.id);
    $("#rollouts").replaceChildren(...(list.length ? list.map(card) : [Object.assign(document.createElement("p"), { textContent: "还没有推送。" })]));
  }

  async function loadRollouts() {
    rollouts.clear();
    for (const r of await api("/api/v1/ota/rollouts")) rollouts.set(r.id, r);
    await Promise.all([...rollouts.values()].filter((r) => r.state === "running" || r.state === "paused").map((r) => loadNodes(r.id).catch(() => [])));
    render();
  }

  async function showNodes(id) {
    shown = id;
    const list = await loadNodes(id);
    $("#rollout-nodes").hidden = false;
    $("#rn-title").textContent = `推送 #${id} 的设备`;
    $("#rn-rows").replaceChildren(...list.map(nodeRow));
  }

  function nodeRow(n) {
    const tr = document.createElement("tr"); tr.id = "rn-" + n.device;
    for (const v of [n.device, WAVE[n.state] || n.state, FW[n.fw_state] || n.fw_state || "—", n.attempts, labels.reason(n.reason)]) cell(tr, v);
    return tr;
  }

  async function control(id, action) {
    try { const r = await post(`/api/v1/ota/rollouts/${id}/${action}`); rollouts.set(r.id, r); render(); }
    catch (e) { $("#ota-msg").textContent = e.message; }
  }

  async function loadPins() {
    const pins = await api("/api/v1/ota/pins");
    $("#pin-rows").replaceChildren(...pins.map((p) => {
      const tr = document.createElement("tr"); cell(tr, p.device); cell(tr, p.note); cell(tr, p.by);
      const b = document.createElement("button"); b.type = "button"; b.textContent = "解锁";
      b.addEventListener("click", async () => { await api(`/api/v1/ota/pins/${encodeURIComponent(p.device)}`, { method: "DELETE" }); loadPins(); });
      tr.append(b); return tr;
    }));
  }

  function onLive(change) {
    if (change.type === "rollout") { rollouts.set(change.id, change); render(); return; }
    if (!nodes.has(change.rollout)) nodes.set(change.rollout, new Map());
    nodes.get(change.rollout).set(change.device, change);
    const card = document.querySelector(`#rollout-${change.rollout} .node-notes`);
    if (card) card.replaceWith(notes(change.rollout));
    if (change.rollout === shown) {
      const old = document.getElementById("rn-" + change.device);
      if (old) old.replaceWith(nodeRow(change));
    }
  }

  $("#release-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target));
    try {
      const r = await post("/api/v1/ota/releases", { kind: f.kind, version: f.version, drill: !!f.drill });
      $("#ota-msg").textContent = `已签名发布 ${r.name}`;
      // The next release is most often the same kind's: the kind stays chosen
      // (a plain reset would go back to the picker's first option).
      ev.target.reset(); ev.target.elements.kind.value = f.kind;
      await loadReleases();
      $("#rollout-release").value = r.name;
    } catch (e) { $("#ota-msg").textContent = e.message; }
  });

  $("#rollout-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target));
    const opt = $("#rollout-release").selectedOptions[0];
    if (!opt) { $("#ota-msg").textContent = "请先发布一个版本"; return; }
    const body = { release: f.release, kind: opt.dataset.kind, version: opt.dataset.version, site: f.site, group: f.group, from_version: f.from_version,
      canary: +f.canary, growth: +f.growth, min_sample: +f.min_sample, pause_at: +f.pause_at, cancel_at: +f.cancel_at };
    try { const r = await post("/api/v1/ota/rollouts", body); rollouts.set(r.id, r); render(); $("#ota-msg").textContent = `推送 #${r.id} 已开始`; }
    catch (e) { $("#ota-msg").textContent = e.message; }
  });

  $("#pin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target));
    try { await api(`/api/v1/ota/pins/${encodeURIComponent(f.device)}`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ note: f.note }) }); ev.target.reset(); loadPins(); }
    catch (e) { $("#ota-msg").textContent = e.message; }
  });

  async function load() { await Promise.all([loadReleases(), loadRollouts(), loadPins()]); }
  return { load, onLive };
})();
