// Time charts for the consoles: a day of detector counts and occupancy, a
// junction's cycle and splits, a device's telemetry. Plain SVG drawn here
// (no chart library: a few bars and lines need none), with a time axis in
// local hours, a value axis on the left (and one on the right for
// percentages), a legend, and an aria-label that reads the figures out.
//
// charts.time({ from, to, series, unit, unit2, label, height }) → <figure>
//   series: [{ name, kind: "bar" | "line" | "step", axis: 1 | 2, points:
//   [[ms, value or null], …], width (a bar's span in ms), cls }]
// A "step" series holds each value until the next point (a plan in force
// until the next one); the last holds to `to`.
"use strict";

const charts = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const W = 480, LEFT = 34, RIGHT = 30, TOP = 6, BOTTOM = 18;

  function el(name, attrs = {}, text = "") {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, typeof v === "number" ? v.toFixed(1) : v);
    if (text) e.textContent = text;
    return e;
  }

  // A round top for an axis: 1, 2, 5 × 10^n at or above `max`.
  function niceMax(max) {
    if (!(max > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(max));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  function number(v) { return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1); }

  function time({ from, to, series, unit = "", unit2 = "", label = "", height = 120 }) {
    const H = height, plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;
    const x = (t) => LEFT + ((t - from) / (to - from)) * plotW;
    const tops = {};
    for (const axis of [1, 2]) {
      const values = series.filter((s) => (s.axis || 1) === axis).flatMap((s) => s.points.map((p) => p[1])).filter((v) => v != null);
      tops[axis] = axis === 2 && unit2 === "%" ? 100 : niceMax(Math.max(0, ...values));
    }
    const y = (v, axis) => TOP + plotH - (Math.max(0, v) / tops[axis || 1]) * plotH;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "time-chart" });
    // Grid and axes: quarters of the value axis, a tick every few hours.
    for (let i = 0; i <= 4; i++) {
      const gy = TOP + plotH - (i / 4) * plotH;
      svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: gy, y2: gy, class: i ? "grid" : "axis" }));
      svg.appendChild(el("text", { x: LEFT - 3, y: gy + 3, class: "tick", "text-anchor": "end" }, number((tops[1] * i) / 4)));
      if (series.some((s) => s.axis === 2)) svg.appendChild(el("text", { x: W - RIGHT + 3, y: gy + 3, class: "tick" }, number((tops[2] * i) / 4) + (i === 4 ? unit2 : "")));
    }
    const hours = (to - from) / 3600e3;
    const every = hours <= 6 ? 1 : hours <= 24 ? 6 : 24;
    const first = new Date(from); first.setMinutes(0, 0, 0);
    for (let t = first.getTime() + 3600e3; t < to; t += 3600e3) {
      const d = new Date(t);
      if (d.getHours() % every) continue;
      svg.appendChild(el("line", { x1: x(t), x2: x(t), y1: TOP + plotH, y2: TOP + plotH + 3, class: "axis" }));
      svg.appendChild(el("text", { x: x(t), y: H - 4, class: "tick", "text-anchor": "middle" }, `${String(d.getHours()).padStart(2, "0")}:00`));
    }
    if (unit) svg.appendChild(el("text", { x: 2, y: TOP + 8, class: "tick" }, unit));
    series.forEach((s, n) => {
      const g = el("g", { class: `series ${s.kind || "line"} ${s.cls || "s" + n}`, "data-series": s.name });
      if (s.kind === "bar") {
        const span = s.width || 3600e3;
        for (const [t, v] of s.points) {
          if (v == null) continue;
          const x0 = x(t) + 0.5, w = Math.max(0.5, x(t + span) - x(t) - 1), top = y(v, s.axis);
          const r = el("rect", { x: x0, y: top, width: w, height: TOP + plotH - top });
          r.appendChild(el("title", {}, `${new Date(t).toLocaleString("zh-CN", { hour12: false })}：${number(v)}${s.unitText || ""}`));
          g.appendChild(r);
        }
      } else {
        const pts = [];
        s.points.forEach(([t, v], i) => {
          if (v == null) { if (pts.length) pts.push(null); return; }
          if (s.kind === "step") {
            const next = i + 1 < s.points.length ? s.points[i + 1][0] : to;
            pts.push([x(Math.max(t, from)), y(v, s.axis)], [x(Math.min(next, to)), y(v, s.axis)]);
          } else pts.push([x(t), y(v, s.axis)]);
        });
        // Gaps (null) split the line: no data is not zero.
        let run = [];
        for (const p of [...pts, null]) {
          if (p) { run.push(p); continue; }
          if (run.length === 1) g.appendChild(el("circle", { cx: run[0][0], cy: run[0][1], r: 1.8 }));
          else if (run.length) g.appendChild(el("polyline", { points: run.map((q) => q.map((c) => c.toFixed(1)).join(",")).join(" ") }));
          run = [];
        }
      }
      svg.appendChild(g);
    });
    svg.setAttribute("aria-label", label || series.map((s) => `${s.name}：${s.points.filter((p) => p[1] != null).map((p) => number(p[1])).join("、") || "无数据"}`).join("；"));
    const fig = document.createElement("figure");
    fig.className = "chart";
    const legend = document.createElement("ul");
    legend.className = "legend";
    series.forEach((s, n) => {
      const li = document.createElement("li");
      li.className = `${s.kind || "line"} ${s.cls || "s" + n}`;
      li.textContent = s.name;
      legend.appendChild(li);
    });
    fig.append(svg, legend);
    return fig;
  }

  return { time, niceMax };
})();
