// The complaint form's place picker: the county map (the shared component,
// county-map.js over MapLibre GL JS) drawn from the GeoJSON the kiosk keeps
// in its content cache, so it works offline. Pan and zoom with a finger; a
// tap puts a big pin there and its coordinates (WGS 84 / CGCS2000, as GNSS
// gives them) into the form.
"use strict";
(async () => {
  const box = document.getElementById("pick-map");
  if (!box) return;
  const data = JSON.parse(document.getElementById("map-data").textContent);
  const text = document.getElementById("pick-text");
  let handle;
  try {
    handle = await countyMap.create(box, { base: null, geojson: data, zoom: 14 });
  } catch (e) {
    text.textContent = "地图无法显示，请在上方填写地点";
    return;
  }
  const coords = [];
  const visit = (c) => { if (typeof c[0] === "number") coords.push(c); else c.forEach(visit); };
  data.features.forEach((f) => visit(f.geometry.coordinates));
  handle.fit(coords);
  handle.onClick(([lon, lat]) => {
    document.getElementById("lat").value = lat.toFixed(6);
    document.getElementById("lon").value = lon.toFixed(6);
    handle.marker("pick", lon, lat, { className: "pick-pin", title: "已选位置" });
    text.textContent = `已选位置：北纬 ${lat.toFixed(5)}，东经 ${lon.toFixed(5)}（可再点一次更改）`;
    const place = document.getElementById("place");
    if (!place.value) place.value = `地图选点 ${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  });
  box.dataset.ready = "1";
})();
