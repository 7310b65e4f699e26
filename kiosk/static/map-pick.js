// Tap the map: the place's coordinates go into the form (the SVG is drawn in
// lon/lat x 1000 with y flipped, so no projection is needed here).
"use strict";
(() => {
  const svg = document.getElementById("pick-map");
  if (!svg) return;
  svg.addEventListener("click", (ev) => {
    const p = svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
    const q = p.matrixTransform(svg.getScreenCTM().inverse());
    const lon = q.x / 1000, lat = -q.y / 1000;
    document.getElementById("lat").value = lat.toFixed(6);
    document.getElementById("lon").value = lon.toFixed(6);
    const dot = document.getElementById("pick");
    dot.setAttribute("cx", q.x); dot.setAttribute("cy", q.y); dot.setAttribute("visibility", "visible");
    const place = document.getElementById("place");
    if (!place.value) place.value = `地图选点 ${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  });
})();
