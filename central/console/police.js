// 警务指挥: officers on the map, SOS, alarms, beats, playback, messages.
// The map is the shared component (map.js, MapLibre GL JS): officers clustered
// with labels that do not collide, devices beneath, beats, SOS, playback.
"use strict";

const police = (() => {
  const KIND = { sos: "紧急求救", beat_exit: "离开责任区", beat_leader: "离岗超时", stationary: "长时间静止", plate: "布控车辆" };
  // Lower first: an SOS above all, then wanted/stolen cars, beats, other cars.
  const PRIORITY = (a) => (a.kind === "sos" ? 0 : a.kind === "plate" ? (["stolen", "wanted"].includes((a.detail || {}).category) ? 1 : 3) : 2);
  const FILTER = { sos: ["sos"], plate: ["plate"], beat: ["beat_exit", "beat_leader", "stationary"] };
  const OPEN = ["raised", "acknowledged", "assigned"];
  const STEP = { raised: 0, acknowledged: 1, assigned: 2, resolved: 3, false_alarm: 3, cancelled: 3 };
  const STATE = { raised: "待确认", acknowledged: "已确认", assigned: "已派警", resolved: "已处置", false_alarm: "误报", cancelled: "已取消" };
  const view = { map: null, onMap: new Map(), officers: new Map(), alarms: new Map(), beats: [], draft: [], audio: null, beepTimer: null, playing: null, selected: null, order: [], picker: null };
  let map = null;  // the county map (countyMap handle)
  let mapReady = null;
  let officerFrame = 0;
  let devicesDue = false;  // the map waits for the officers before the devices
  const officerRows = new Map();  // device → [li, what it shows]

  // Bottom to top: devices, beats, the beat being drawn, SOS radii, a
  // played-back track, officers (clustered, labels never overlap); each
  // with the first of its map layers and how it is drawn.
  const STACK = [
    ["devices", "devices-cluster", { cluster: true, color: "#6b7785", clusterColor: "#8a939c", radius: 4, bulk: true }],
    ["beats", "beats-fill", { label: "name" }],
    ["draft", "draft-line", { color: "#b42318", width: 2, dash: [2, 2] }],
    ["sos-radius", "sos-radius-circle", { color: "#b42318" }],
    ["playback", "playback-line", { color: "#7c3aed", width: 4 }],
    ["officers", "officers-cluster", { cluster: true, label: "label", accuracy: "accuracy_m",
      color: ["match", ["get", "state"], "sos", "#b42318", "offline", "#8a939c", "#0b3d5c"] }],
  ];

  // Give layer `id` its data (draw: "points", "lines", "polygons" or
  // "circles"); the first time it has any, add it beneath the layers above
  // it. Returns true when it was added.
  function layer(draw, id, data) {
    if (map.map.getSource(id)) { map[draw](id, data); return false; }
    if (!data.length) return false;
    const at = STACK.findIndex(([name]) => name === id);
    const before = STACK.slice(at + 1).map(([, first]) => first).find((l) => map.map.getLayer(l));
    map[draw](id, data, { ...STACK[at][2], before });
    return true;
  }

  function drawMap() {
    mapReady = mapReady || (async () => {
      // early: the officers' layer loads beside the base map's first tiles.
      try { map = await countyMap.create($("#police-map"), { early: true, lateNames: true }); } catch (e) { $("#police-msg").textContent = e.message; return; }
      // Each layer comes with its data (layer()): added empty, the map
      // would cut and draw its tiles for nothing on the way to the first
      // picture.
      map.onClick(([lon, lat]) => {
        if (!$("#beat-form").open) return;
        view.draft.push([Number(lon.toFixed(6)), Number(lat.toFixed(6))]);
        drawBeats();
      });
      view.map = map;
      drawBeats(); redrawAll = true; renderOfficers();
      // The devices come once the officers are on screen (renderOfficers):
      // they are context, and ten thousand of them must not hold up the
      // first useful picture.
      devicesDue = true;
      setTimeout(() => map.showNames(), 5000);  // the names come anyway, officers or not
    })();
    return mapReady;
  }

  // Every device with a place (cameras, cabinets, kiosks) beneath the officers.
  async function loadDevices() {
    const features = [];
    for (let offset = 0, pages = 0; pages < 50; pages++) {
      const page = await api(`/api/v1/devices?limit=1000&offset=${offset}`);
      for (const d of page.items) if (d.lat != null && d.kind !== "handheld") features.push(countyMap.point(d.lon, d.lat, { device: d.id }));
      offset += page.items.length;
      if (!page.items.length || offset >= page.total) break;
    }
    layer("points", "devices", features);
  }

  function drawBeats() {
    if (!map) return;
    layer("polygons", "beats", view.beats.map((b) => ({ type: "Feature", geometry: b.geometry, properties: { name: `${b.name}（${b.unit}）` } })));
    layer("lines", "draft", view.draft.length ? [view.draft] : []);
    map.prune("corner-");
    view.draft.forEach(([lon, lat], i) => map.marker(`corner-${i}`, lon, lat, { className: "draft-corner" }));
  }

  // Live positions arrive by the hundred a second, gathered by central into
  // a few batches a second. The map's officer source is re-tiled (in its
  // worker, then unpacked and placed here) on each change, a cost of its own
  // whatever the number of officers moved: positions go to it at most once
  // a second (a handheld reports every few seconds), only what changed, as a
  // diff by feature id. Alarms and the first load redraw everything.
  const REDRAW_MS = 2000;
  let drawnAt = 0;
  const moved = new Set();  // officers changed since the last redraw
  let redrawAll = true;
  const featureIds = new Map();  // device → the officer's numeric feature id

  function drawOfficers(device) {
    if (device === undefined) redrawAll = true; else moved.add(device);
    scheduleOfficers();
  }

  function scheduleOfficers() {
    if (officerFrame) return;
    if (redrawAll) {
      // Everything (the first load, an alarm): at once, once for the calls
      // of this task, without waiting for a frame the map may be holding up.
      officerFrame = 1;
      queueMicrotask(renderOfficers);
      return;
    }
    const wait = redrawAll ? 0 : Math.max(0, drawnAt + REDRAW_MS - performance.now());
    officerFrame = setTimeout(() => requestAnimationFrame(renderOfficers), wait);
  }

  function officerFeature(o, sosDevices) {
    // A phone has no broker presence: it is shown by when it was last heard.
    const away = o.phone ? false : o.online === false;
    const state = sosDevices.has(o.device) ? "sos" : away ? "offline" : "on";
    const card = officerCard(o);
    const title = [o.name || o.device, o.badge, card].filter(Boolean).join(" · ");
    officerRow(o, state, card, title);
    if (o.lat == null) return null;
    const props = { device: o.device, label: o.name || o.device, state, title };
    if (o.accuracy_m > 0) props.accuracy_m = o.accuracy_m;  // how far off the fix may be
    if (!featureIds.has(o.device)) featureIds.set(o.device, featureIds.size + 1);
    const f = countyMap.point(o.lon, o.lat, props);
    f.id = featureIds.get(o.device);
    return f;
  }

  function renderOfficers() {
    officerFrame = 0;
    drawnAt = performance.now();
    const sosDevices = new Set([...view.alarms.values()].filter((a) => a.kind === "sos" && a.state === "raised").map((a) => a.device));
    $("#officer-count").textContent = `共 ${view.officers.size} 名`;
    const source = map && map.map.getSource("officers");
    if (!redrawAll && source) {
      // Only the officers that moved, as a diff: the rest stay as they are.
      const update = [], add = [];
      for (const device of moved) {
        const o = view.officers.get(device);
        const known = featureIds.has(device);
        const f = o && officerFeature(o, sosDevices);
        if (!f) continue;
        if (!known || !view.onMap.has(device)) { add.push(f); view.onMap.set(device, f.properties); continue; }
        // The position, and of the properties only those that changed.
        const before = view.onMap.get(device);
        const changed = Object.entries(f.properties).filter(([k, v]) => before[k] !== v).map(([key, value]) => ({ key, value }));
        const gone = Object.keys(before).filter((k) => !(k in f.properties));
        view.onMap.set(device, f.properties);
        const u = { id: f.id, newGeometry: f.geometry };
        if (changed.length) u.addOrUpdateProperties = changed;
        if (gone.length) u.removeProperties = gone;
        update.push(u);
      }
      moved.clear();
      if (!update.length && !add.length) return;
      source.updateData({ update, add });
      // The next update waits a second from when this one is on screen, so
      // a slow machine redraws less often instead of falling behind.
      officerFrame = -1;
      let done = false;
      const drawn = () => {
        if (done) return;
        done = true; drawnAt = performance.now(); officerFrame = 0;
        if (moved.size || redrawAll) scheduleOfficers();
      };
      map.map.once("idle", drawn);
      setTimeout(drawn, 5000);  // a map that never settles still gets them
      return;
    }
    redrawAll = !map;  // without the map yet, its first draw takes them all
    moved.clear();
    const features = [];
    for (const o of view.officers.values()) {
      const f = officerFeature(o, sosDevices);
      if (f) features.push(f);
    }
    if (!map) return;
    if (!map.map.getSource("officers") && !view.loaded) { redrawAll = true; return; }  // the list is on its way
    if (layer("points", "officers", features)) map.onPoint("officers", (p) => { $("#police-msg").textContent = p.title; });
    view.onMap = new Map(features.map((f) => [f.properties.device, f.properties]));
    if (devicesDue && (features.length || view.loaded)) {
      devicesDue = false;
      map.map.once("idle", () => {
        map.showNames();
        loadDevices().catch(() => { /* a role without device reads sees officers only */ });
      });
    }
    const keep = new Set(), radii = [];
    for (const a of view.alarms.values()) {
      if (a.kind !== "sos" || a.lat == null || !["raised", "acknowledged", "assigned"].includes(a.state)) continue;
      keep.add(`sos-${a.id}`);
      radii.push({ lon: a.lon, lat: a.lat, metres: 2000 });
      map.marker(`sos-${a.id}`, a.lon, a.lat, { className: "sos-pulse" + (a.state === "raised" ? " flashing" : ""), title: `紧急求救 · ${(view.officers.get(a.device) || {}).name || a.device}` });
    }
    map.prune("sos-", keep);
    layer("circles", "sos-radius", radii);
  }

  // The officer list beside the map: one row per officer, redrawn when it changes.
  function officerRow(o, state, card, title) {
    const shows = [state, card, title, o.phone ? 1 : 0].join("|");
    let row = officerRows.get(o.device);
    if (row && row[1] === shows) return;
    if (!row) {
      const li = document.createElement("li");
      li.dataset.device = o.device;
      li.addEventListener("click", () => { const x = view.officers.get(o.device); if (x && x.lat != null && map) map.map.easeTo({ center: [x.lon, x.lat], zoom: Math.max(map.map.getZoom(), 16) }); });
      $("#police-officers").appendChild(li);
      row = [li, ""];
      officerRows.set(o.device, row);
    }
    row[1] = shows;
    const li = row[0];
    li.className = "officer" + (state === "sos" ? " sos" : "") + (state === "offline" ? " offline" : "") + (o.phone ? " phone" : "");
    li.title = title;
    const name = document.createElement("strong");
    name.textContent = o.name || o.device;
    const cardEl = document.createElement("span");
    cardEl.className = "officer-card";
    cardEl.textContent = card;
    li.replaceChildren(name, cardEl);
  }

  // 电量、定位精度、最后上报 (phones): the officer's card under the marker.
  function officerCard(o) {
    const parts = [];
    if (o.battery != null) parts.push(`电量 ${Math.round(o.battery)}%`);
    if (o.accuracy_m != null) parts.push(`精度 ±${Math.round(o.accuracy_m)} 米`);
    if (o.phone) parts.push(`手机 · 最后上报 ${timeText(o.last_seen || o.fix_ts)}`);
    return parts.join(" · ");
  }

  const officerName = (device) => { const o = view.officers.get(device); return (o && o.name) || device; };

  function alarmTitle(a) {
    const d = a.detail || {};
    if (a.kind === "plate") return `${KIND.plate} · ${d.plate || ""}${d.category_name ? "（" + d.category_name + "）" : ""} · ${a.device}`;
    return `${KIND[a.kind] || a.kind} · ${officerName(a.device)}`;
  }

  function alarmRow(a) {
    const li = document.createElement("li");
    li.className = "alarm " + a.kind + " " + a.state + (view.selected === a.id ? " selected" : "");
    li.dataset.alarm = a.id;
    li.tabIndex = -1;
    const d = a.detail || {};
    const title = document.createElement("strong");
    title.textContent = alarmTitle(a);
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${STATE[a.state] || a.state} · ${timeText(a.raised_at)}${a.delayed ? " · 延迟送达" : ""}`
      + (a.kind === "plate" && d.count > 1 ? ` · 共 ${d.count} 次，最后 ${timeText(d.last_seen)}` : "")
      + (a.alerted && a.alerted.length ? ` · 已通知 ${a.alerted.length} 名附近警员` : "")
      + (a.escalated_at ? " · 已升级" : "") + (a.responders.length ? ` · 出警：${a.responders.map(officerName).join("、")}` : "");
    meta.dataset.field = "meta";
    li.append(title, meta);
    const actions = { raised: [["acknowledge", "确认"], ["false-alarm", "误报"]], acknowledged: [["assign", "派警"], ["resolve", "处置完毕"], ["false-alarm", "误报"]], assigned: [["assign", "增派"], ["resolve", "处置完毕"]] }[a.state] || [];
    for (const [action, label] of actions) {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.dataset.action = action;
      b.addEventListener("click", () => act(a, action, li).catch((e) => { $("#police-msg").textContent = e.message; }));
      li.appendChild(b);
    }
    // An open 派警 list survives the redraws live updates cause.
    if (view.picker && view.picker.id === a.id) li.appendChild(view.picker.box);
    return li;
  }

  function drawAlarms() {
    const open = [...view.alarms.values()].filter((a) => OPEN.includes(a.state));
    const rank = (a) => [PRIORITY(a), a.state === "raised" ? 0 : 1, -Date.parse((a.detail || {}).last_seen || a.raised_at || 0), -a.id];
    const byRank = (x, y) => { const p = rank(x), q = rank(y); for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return p[i] - q[i]; return 0; };
    // An SOS stays pinned above the map and the list until it is closed.
    const pinned = open.filter((a) => a.kind === "sos").sort(byRank);
    const want = FILTER[$("#alarm-filter").value];
    const rest = open.filter((a) => a.kind !== "sos" && (!want || want.includes(a.kind))).sort(byRank);
    view.order = [...pinned, ...rest].map((a) => a.id);
    if (view.selected !== null && !view.order.includes(view.selected)) view.selected = view.order[0] ?? null;
    $("#sos-pinned").replaceChildren(...pinned.map(alarmRow));
    $("#alarm-list").replaceChildren(...rest.map(alarmRow));
    $("#alarm-count").textContent = `未处置 ${open.length} 起` + (rest.length + pinned.length < open.length ? `，显示 ${rest.length + pinned.length} 起` : "");
    const unacked = open.filter((a) => a.kind === "sos" && a.state === "raised");
    const banner = $("#sos-banner");
    banner.hidden = unacked.length === 0;
    if (unacked.length) banner.textContent = `紧急求救 ${unacked.length} 起，待确认`;
    setAlarmSound(unacked.length > 0);
    drawOfficers();
  }

  // Keyboard: j/k or ↓/↑ choose an alarm, Enter (or a) acknowledges it.
  function onKey(ev) {
    if ($("#page-police").hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    // Enter on a visible button or link is that button's own click.
    if (ev.key === "Enter" && ev.target.closest && ev.target.closest("button, a") && ev.target.offsetParent !== null) return;
    const order = view.order;
    if (!order.length) return;
    const at = order.indexOf(view.selected);
    if (ev.key === "j" || ev.key === "ArrowDown") view.selected = order[Math.min(order.length - 1, at + 1)];
    else if (ev.key === "k" || ev.key === "ArrowUp") view.selected = order[Math.max(0, at - 1)];
    else if (ev.key === "Enter" || ev.key === "a") {
      const a = view.alarms.get(view.selected ?? order[0]);
      if (a && a.state === "raised") act(a, "acknowledge").catch((e) => { $("#police-msg").textContent = e.message; });
      ev.preventDefault();
      return;
    } else return;
    ev.preventDefault();
    drawAlarms();
    const li = document.querySelector(`li[data-alarm="${view.selected}"]`);
    if (li) { li.focus({ preventScroll: true }); li.scrollIntoView({ block: "nearest" }); }
  }

  // 派警: the nearest free officers by name and distance; tick and send.
  async function pickResponders(alarm, li) {
    if (view.picker && view.picker.id === alarm.id) { view.picker.box.remove(); view.picker = null; return; }
    const box = document.createElement("div");
    box.className = "dispatch";
    view.picker = { id: alarm.id, box };
    box.textContent = "正在查找附近空闲警员…";
    li.appendChild(box);
    const near = await api(`/api/v1/police/alarms/${alarm.id}/nearest`);
    box.replaceChildren();
    if (!near.length) { box.textContent = "5 公里内没有空闲警员"; return; }
    for (const [i, n] of near.entries()) {
      const label = document.createElement("label");
      label.className = "inline";
      const box2 = document.createElement("input");
      box2.type = "checkbox"; box2.value = n.device; box2.checked = i < 2;
      const dist = n.distance_m < 1000 ? `${Math.round(n.distance_m)} 米` : `${(n.distance_m / 1000).toFixed(1)} 公里`;
      label.append(box2, ` ${n.name || n.device}${n.badge ? "（警号 " + n.badge + "）" : ""}${n.unit ? " · " + n.unit : ""} · ${dist}`);
      box.appendChild(label);
    }
    const send = document.createElement("button");
    send.type = "button"; send.textContent = "派出所选警员"; send.dataset.action = "send";
    send.addEventListener("click", async () => {
      const responders = [...box.querySelectorAll("input:checked")].map((c) => c.value);
      if (!responders.length) { $("#police-msg").textContent = "请至少选择一名警员"; return; }
      try {
        view.picker = null;
        await transition(alarm, "assign", { note: "", responders });
        $("#police-msg").textContent = `已派警：${responders.map(officerName).join("、")}`;
      } catch (e) { $("#police-msg").textContent = e.message; }
    });
    box.appendChild(send);
  }

  function setAlarmSound(on) {
    if (on && !view.beepTimer) {
      view.beepTimer = setInterval(beep, 1000);
      beep();
    } else if (!on && view.beepTimer) {
      clearInterval(view.beepTimer); view.beepTimer = null;
    }
  }

  function beep() {
    try {
      view.audio = view.audio || new AudioContext();
      const osc = view.audio.createOscillator(), gain = view.audio.createGain();
      osc.frequency.value = 880; gain.gain.value = 0.2;
      osc.connect(gain).connect(view.audio.destination);
      osc.start(); osc.stop(view.audio.currentTime + 0.35);
    } catch (e) { /* no audio device: the banner still flashes */ }
  }

  async function transition(alarm, action, body) {
    const updated = await api(`/api/v1/police/alarms/${alarm.id}/${action}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    view.alarms.set(updated.id, updated);
    drawAlarms();
  }

  async function act(alarm, action, li) {
    if (action === "assign") return pickResponders(alarm, li);
    return transition(alarm, action, { note: "" });
  }

  async function load() {
    drawMap();  // the map loads beside the data; it draws what is there once ready
    const [officers, alarms, beats] = await Promise.all([
      api("/api/v1/police/officers"), api("/api/v1/police/alarms"), api("/api/v1/police/beats"),
    ]);
    view.officers = new Map(officers.map((o) => [o.device, o]));
    view.alarms = new Map(alarms.map((a) => [a.id, a]));
    view.beats = beats;
    view.loaded = true;
    for (const sel of [$("#playback-form [name=device]"), $("#phone-form [name=device]")]) {
      sel.replaceChildren(...officers.map((o) => { const op = document.createElement("option"); op.value = o.device; op.textContent = o.name || o.device; return op; }));
    }
    drawBeats(); drawAlarms(); loadMessages();
  }

  // One officer's report: only what it carries (a phone's report without a
  // fix brings its battery and when it was heard, and leaves the position).
  function takeOfficer(change) {
    const o = view.officers.get(change.device) || { device: change.device };
    for (const k of ["lat", "lon", "speed_mps", "fix_ts", "battery", "accuracy_m", "last_seen"]) {
      if (change[k] !== undefined) o[k] = change[k];
    }
    if (change.source === "osmand") { o.phone = true; o.last_seen = change.last_seen || change.fix_ts; }
    else if (change.lat !== undefined && !o.phone) o.online = true;
    view.officers.set(change.device, o);
    drawOfficers(change.device);
  }

  function onLive(change) {
    if (change.type === "officers") {
      for (const item of change.items) takeOfficer(item);  // central's batch
    } else if (change.type === "officer") {
      takeOfficer(change);
    } else if (change.type === "alarm") {
      // An alarm only moves forward; a view that was on its way before the
      // last action (a repeat, a retried SOS) must not undo it on screen.
      const known = view.alarms.get(change.id);
      if (known && STEP[change.state] < STEP[known.state]) return;
      view.alarms.set(change.id, change);
      drawAlarms();
    } else if (change.type === "receipt") {
      loadMessages();
    }
  }

  async function loadMessages() {
    const rows = await api("/api/v1/police/messages?limit=10");
    $("#message-list").replaceChildren(...rows.map((m) => {
      const li = document.createElement("li");
      const got = m.receipts.filter((r) => r.received_at).length, acked = m.receipts.filter((r) => r.acked_at).length;
      li.textContent = `${timeText(m.created_at)} → ${m.audience === "all" ? "全体" : m.target}：${m.text}（送达 ${got}/${m.receipts.length}，确认 ${acked}）`;
      return li;
    }));
  }

  // -- beat editor: click the map to add corners --------------------------------
  async function saveBeat(form) {
    if (view.draft.length < 3) throw new Error("请在地图上至少点选三个角点");
    const f = Object.fromEntries(new FormData(form));
    const ring = [...view.draft, view.draft[0]];
    await api("/api/v1/police/beats", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        name: f.name, unit: f.unit, buffer_m: Number(f.buffer_m),
        geometry: { type: "Polygon", coordinates: [ring] },
        shifts: [{ days: [0, 1, 2, 3, 4, 5, 6], start: f.start, end: f.end }],
      }),
    });
    view.draft = [];
    view.beats = await api("/api/v1/police/beats");
    drawBeats();
  }

  // -- playback ------------------------------------------------------------------
  async function play(form) {
    const f = Object.fromEntries(new FormData(form));
    const params = new URLSearchParams({ deviceId: f.device, from: new Date(f.from).toISOString(), to: new Date(f.to).toISOString() });
    const route = await api("/api/v1/police/reports/route?" + params);
    await drawMap();
    if (!map) return;
    if (view.playing) cancelAnimationFrame(view.playing);
    map.prune("playhead");
    layer("lines", "playback", []);
    if (!route.length) { $("#playback-state").textContent = "该时段没有轨迹"; return; }
    const track = route.map((r) => [r.longitude, r.latitude]);
    layer("lines", "playback", [track]);
    map.fit(track);
    const speed = Number(f.speed), t0 = Date.parse(route[0].fixTime), started = performance.now();
    let i = 0;
    const step = (now) => {
      const t = t0 + (now - started) * speed;
      while (i < route.length - 1 && Date.parse(route[i + 1].fixTime) <= t) i++;
      map.marker("playhead", route[i].longitude, route[i].latitude, { className: "playhead" });
      $("#playback-state").textContent = `${timeText(route[i].fixTime)} · ${speed}×`;
      if (i < route.length - 1) view.playing = requestAnimationFrame(step);
    };
    view.playing = requestAnimationFrame(step);
  }

  function wire() {
    document.addEventListener("keydown", onKey);
    $("#alarm-filter").addEventListener("change", drawAlarms);
    $("#beat-form form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      saveBeat(ev.target).then(() => { $("#police-msg").textContent = "责任区已保存"; }).catch((e) => { $("#police-msg").textContent = e.message; });
    });
    $("#beat-clear").addEventListener("click", () => { view.draft = []; drawBeats(); });
    const phonePath = () => `/api/v1/police/officers/${encodeURIComponent($("#phone-form [name=device]").value)}/osmand`;
    $("#phone-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const made = await api(phonePath(), { method: "POST" });
        $("#phone-url").textContent = location.origin + made.path;
        $("#phone-id").textContent = made.identifier;
        $("#phone-result").hidden = false;
        $("#police-msg").textContent = "已生成手机识别码";
      } catch (e) { $("#police-msg").textContent = e.message; }
    });
    $("#phone-revoke").addEventListener("click", async () => {
      try {
        await api(phonePath(), { method: "DELETE" });
        $("#phone-result").hidden = true;
        $("#police-msg").textContent = "手机识别码已停用";
      } catch (e) { $("#police-msg").textContent = e.message; }
    });
    $("#playback-form").addEventListener("submit", (ev) => { ev.preventDefault(); play(ev.target).catch((e) => { $("#playback-state").textContent = e.message; }); });
    $("#message-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = Object.fromEntries(new FormData(ev.target));
      try {
        await api("/api/v1/police/messages", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(f) });
        ev.target.reset(); loadMessages();
      } catch (e) { $("#police-msg").textContent = e.message; }
    });
    const now = new Date(), hourAgo = new Date(now - 3600e3);
    const local = (d) => new Date(d - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16);
    $("#playback-form [name=from]").value = local(hourAgo);
    $("#playback-form [name=to]").value = local(new Date(now.getTime() + 60e3));
  }

  return { load, onLive, wire, stopSound: () => setAlarmSound(false) };
})();

police.wire();
