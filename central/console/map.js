// The county map every page draws on: the GeoJSON central ships, as SVG.
// No tile server and no third-party code; one projection per drawing.
"use strict";

const countyMap = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  let cached = null;

  function el(name, attrs = {}, parent = null) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function projection(features, svg) {
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    const visit = (c) => { if (typeof c[0] === "number") { minX = Math.min(minX, c[0]); maxX = Math.max(maxX, c[0]); minY = Math.min(minY, c[1]); maxY = Math.max(maxY, c[1]); } else c.forEach(visit); };
    features.forEach((f) => visit(f.geometry.coordinates));
    const k = Math.cos(((minY + maxY) / 2) * Math.PI / 180);
    const pad = 0.002;
    minX -= pad; maxX += pad; minY -= pad; maxY += pad;
    const w = 1000, h = Math.round(w * (maxY - minY) / ((maxX - minX) * k));
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    const project = (lon, lat) => [((lon - minX) / (maxX - minX)) * w, ((maxY - lat) / (maxY - minY)) * h];
    project.inverse = (x, y) => [minX + (x / w) * (maxX - minX), maxY - (y / h) * (maxY - minY)];
    project.metres = (m) => (m / (111320 * k)) / (maxX - minX) * w;
    return project;
  }

  const points = (project, coords) => coords.map(([lon, lat]) => project(lon, lat).map((v) => v.toFixed(1)).join(",")).join(" ");

  // Draw roads and places into `layer` of `svg`; return the projection.
  async function draw(svg, layer) {
    cached = cached || await (await fetch("map/rongjiawan.geojson")).json();
    const project = projection(cached.features, svg);
    layer.replaceChildren();
    for (const f of cached.features) {
      const p = f.properties;
      if (p.kind === "road") {
        el("polyline", { points: points(project, f.geometry.coordinates), class: "road " + p.class }, layer);
        const [x, y] = project(...f.geometry.coordinates[0]);
        el("text", { x: x + 4, y: y - 4, class: "road-name" }, layer).textContent = p.name;
      } else if (p.kind === "place") {
        const [x, y] = project(...f.geometry.coordinates);
        el("circle", { cx: x, cy: y, r: 3, class: "place" }, layer);
        el("text", { x: x + 5, y: y + 4, class: "place-name" }, layer).textContent = p.name;
      }
    }
    el("text", { x: 8, y: 18, class: "map-note" }, layer).textContent = cached.name;
    return project;
  }

  return { el, draw, points };
})();
