// 车牌比对: live reads, hits and possible hits with their images, the suspect
// list (嫌疑车牌库) and sighting search with the plate's track on the map.
"use strict";

const plates = (() => {
  const CAT = { stolen: "被盗抢车辆", wanted: "在逃人员车辆", unpaid: "欠费车辆", inspection: "逾期未检", other: "其他布控" };
  const COLOUR = { blue: "蓝牌", yellow: "黄牌", green: "绿牌", white: "白牌", black: "黑牌" };
  let map = null;  // the county map (countyMap handle)
  let mapReady = null;
  const drawMap = async () => { mapReady = mapReady || countyMap.create($("#plates-map")); map = await mapReady; return map; };

  const img = (sha, alt) => {
    const i = document.createElement("img");
    i.alt = alt;
    // <img> cannot send headers and tokens stay out of URLs: fetch, show the blob.
    authFetch(`/api/v1/plates/evidence/${sha}`)
      .then((res) => (res.ok ? res.blob() : null))
      .then((blob) => { if (blob) i.src = URL.createObjectURL(blob); })
      .catch(() => {});
    return i;
  };

  function readRow(r) {
    const li = document.createElement("li");
    li.className = "read" + (r.hit ? " hit" : "");
    const images = (r.evidence && r.evidence.images) || {};
    if (images.plate) li.appendChild(img(images.plate, r.plate));
    const span = document.createElement("span");
    const trust = r.evidence && r.evidence.verified ? (r.evidence.trust === "fleet" ? "证据已验签" : "证据自签") : "证据校验失败";
    span.textContent = `${r.plate} · ${COLOUR[r.colour] || r.colour} · ${(r.confidence * 100).toFixed(0)}% · ${r.device} · ${timeText(r.seen_at)} · ${trust}`;
    li.appendChild(span);
    return li;
  }

  function hitRow(h) {
    const li = document.createElement("li");
    li.className = "hit " + h.kind;
    li.dataset.hit = h.id;
    const images = (h.sighting && h.sighting.evidence && h.sighting.evidence.images) || {};
    if (images.plate) li.appendChild(img(images.plate, h.read));
    if (images.scene) li.appendChild(img(images.scene, "现场"));
    const text = document.createElement("div");
    text.textContent = (h.kind === "exact" ? "命中 " : "疑似 ") + `${h.listed}（${h.category_name}）识别为 ${h.read}` + (h.kind === "possible" ? ` · 相似度 ${(h.score * 100).toFixed(0)}%` : "");
    li.appendChild(text);
    // When and where: the camera and the time it saw the car.
    const s = h.sighting || {};
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.dataset.field = "where";
    meta.textContent = `${timeText(s.seen_at || h.created_at)} · ${s.device || "未知卡口"}`;
    text.appendChild(meta);
    if (h.kind === "possible" && h.state === "open") {
      for (const [decision, label] of [["confirm", "确认是该车"], ["reject", "不是该车"]]) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = label; b.dataset.decision = decision;
        b.addEventListener("click", async () => {
          try { await api(`/api/v1/plates/hits/${h.id}/${decision}`, { method: "POST" }); loadHits(); } catch (e) { $("#plates-msg").textContent = e.message; }
        });
        li.appendChild(b);
      }
    }
    return li;
  }

  async function loadReads() { $("#plate-reads").replaceChildren(...(await api("/api/v1/plates/reads?limit=20")).map(readRow)); }
  async function loadHits() { $("#plate-hits").replaceChildren(...(await api("/api/v1/plates/hits")).map(hitRow)); }

  async function loadSuspects() {
    const q = $("#suspect-search").value.trim();
    const page = await api("/api/v1/plates/suspects?limit=50" + (q ? "&q=" + encodeURIComponent(q) : ""));
    $("#suspect-rows").replaceChildren(...page.items.map((s) => {
      const tr = document.createElement("tr");
      for (const v of [s.plate, s.category_name, s.note, timeText(s.valid_from), s.valid_until ? timeText(s.valid_until) : "长期", s.added_by]) {
        const td = document.createElement("td"); td.textContent = text(v); tr.appendChild(td);
      }
      const td = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "移出";
      b.addEventListener("click", async () => { await api(`/api/v1/plates/suspects/${s.id}`, { method: "DELETE" }); loadSuspects(); });
      td.appendChild(b); tr.appendChild(td);
      return tr;
    }));
  }

  async function search(plate) {
    const rows = await api("/api/v1/plates/sightings?plate=" + encodeURIComponent(plate));
    $("#sighting-rows").replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      for (const v of [timeText(r.seen_at), r.device, (r.confidence * 100).toFixed(0) + "%", r.lat == null ? "" : `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}`]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      return tr;
    }));
    await drawMap();
    // One marker per camera with how many times the plate passed it (the
    // times in its tooltip), the track in order of passing, and the cameras'
    // names as labels that give way instead of printing over each other.
    const placed = rows.filter((r) => r.lat != null).sort((a, b) => Date.parse(a.seen_at) - Date.parse(b.seen_at));
    const cameras = new Map();
    for (const r of placed) {
      const key = `${r.lon},${r.lat}`;
      if (!cameras.has(key)) cameras.set(key, { lon: r.lon, lat: r.lat, device: r.device, times: [] });
      cameras.get(key).times.push(timeText(r.seen_at));
    }
    map.lines("plate-track", placed.length > 1 ? [placed.map((r) => [r.lon, r.lat])] : [], { color: "#7c3aed", width: 4 });
    map.points("plate-cameras", [...cameras.values()].map((c) => countyMap.point(c.lon, c.lat, { label: `${c.device} · ${c.times.length} 次` })), { label: "label", radius: 0.1 });
    const keep = new Set();
    for (const [key, c] of cameras) {
      keep.add("cam-" + key);
      map.marker("cam-" + key, c.lon, c.lat, { className: "camera-dot", text: String(c.times.length), title: `${c.device}：${c.times.join("、")}`, data: { device: c.device } });
    }
    map.prune("cam-", keep);
    map.fit([...cameras.values()].map((c) => [c.lon, c.lat]));
    $("#sighting-state").textContent = `${plate}：共 ${rows.length} 次经过`;
  }

  async function load() {
    drawMap().catch((e) => { $("#plates-msg").textContent = e.message; });
    await Promise.all([loadReads(), loadHits(), loadSuspects()]);
  }

  function onLive(change) {
    if (change.type === "plate_read") loadReads();
    if (change.type === "plate_hit") loadHits();
  }

  function wire() {
    const sel = $("#suspect-form [name=category]");
    for (const [k, v] of Object.entries(CAT)) { const o = document.createElement("option"); o.value = k; o.textContent = v; sel.appendChild(o); }
    $("#suspect-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(ev.target));
      const body = { plate: f.plate, category: f.category, note: f.note };
      if (f.valid_until) body.valid_until = new Date(f.valid_until).toISOString();
      try {
        await api("/api/v1/plates/suspects", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        ev.target.reset(); $("#plates-msg").textContent = "已加入布控"; loadSuspects();
      } catch (e) { $("#plates-msg").textContent = e.message; }
    });
    $("#suspect-csv").addEventListener("change", async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      const r = await api("/api/v1/plates/suspects/import", { method: "POST", headers: { "Content-Type": "text/csv" }, body: await file.text() });
      $("#plates-msg").textContent = `导入 ${r.added} 条` + (r.errors.length ? `，${r.errors.length} 条有误（第 ${r.errors.map((e) => e.line).join("、")} 行）` : "");
      loadSuspects();
    });
    $("#suspect-search").addEventListener("input", () => loadSuspects());
    $("#sighting-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      search(new FormData(ev.target).get("plate")).catch((e) => { $("#sighting-state").textContent = e.message; });
    });
  }

  return { load, onLive, wire };
})();

plates.wire();
