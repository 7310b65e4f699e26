// The one map component of the consoles and the kiosk: MapLibre GL JS (from
// npm through scripts/setup, served from ./vendor, no CDN) on the base map
// central's settings choose (GET /api/v1/maps/base, docs/maps.md).
//
// countyMap.create(container, options) gives a handle with pan and zoom,
// clustered point layers with labels that do not collide (symbol layers),
// lines, circles in metres, HTML markers (SOS pulse, playhead, camera dots)
// and clicks as [lon, lat]. Text is drawn from the local fonts (no glyph
// files): the style names no "glyphs" URL, so MapLibre draws every glyph
// with the browser's own font (Noto Sans CJK from the set-up).
// Positions are shown as they come (WGS 84 / CGCS2000); no offset is applied.
"use strict";

const countyMap = (() => {
  const FONT = ["Noto Sans CJK SC", "sans-serif"];
  const GEOJSON = "map/rongjiawan.geojson";
  const CENTRE = [113.118, 29.145];
  const handles = [];
  let baseCache = null;

  // -- the base map ---------------------------------------------------------------
  function baseMap(url = "/api/v1/maps/base") {
    baseCache = baseCache || fetch(url).then((r) => (r.ok ? r.json() : null)).catch(() => null);
    return baseCache;
  }

  // Roads, places and beats of the county, from vector tiles or the GeoJSON.
  function countyLayers(sourceLayer) {
    const src = sourceLayer ? { source: "county", "source-layer": sourceLayer } : { source: "county" };
    const kind = (k) => ["==", ["get", "kind"], k];
    return [
      { id: "county-beat", type: "fill", ...src, filter: kind("beat"), paint: { "fill-color": "#0b3d5c", "fill-opacity": 0.05 } },
      { id: "county-road-casing", type: "line", ...src, filter: kind("road"), layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": "#c9d1cc", "line-width": ["interpolate", ["linear"], ["zoom"], 11, 3, 16, ["match", ["get", "class"], "main", 16, 11]] } },
      { id: "county-road", type: "line", ...src, filter: kind("road"), layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": ["match", ["get", "class"], "ring", "#f6d28b", "#ffffff"], "line-width": ["interpolate", ["linear"], ["zoom"], 11, 2, 16, ["match", ["get", "class"], "main", 13, 8]] } },
      { id: "county-road-name", type: "symbol", ...src, filter: kind("road"),
        layout: { "symbol-placement": "line", "text-field": ["get", "name"], "text-font": FONT, "text-size": 13 },
        paint: { "text-color": "#445", "text-halo-color": "#fff", "text-halo-width": 1.5 } },
      { id: "county-place", type: "circle", ...src, filter: kind("place"), paint: { "circle-radius": 4, "circle-color": "#6b7785", "circle-stroke-color": "#fff", "circle-stroke-width": 1 } },
      { id: "county-place-name", type: "symbol", ...src, filter: kind("place"),
        layout: { "text-field": ["get", "name"], "text-font": FONT, "text-size": 14, "text-anchor": "left", "text-offset": [0.6, 0] },
        paint: { "text-color": "#334", "text-halo-color": "#fff", "text-halo-width": 1.5 } },
    ];
  }

  function absolute(url) { return url.startsWith("/") ? location.origin + url : url; }

  // A MapLibre style for `base` (null or unavailable: the county's GeoJSON).
  function style(base, geojson) {
    const layers = [{ id: "background", type: "background", paint: { "background-color": "#eef2f0" } }];
    const sources = {};
    if (base && base.available && base.kind === "mbtiles") {
      sources.county = { type: "vector", tiles: base.tiles.map(absolute), minzoom: base.minzoom || 0, maxzoom: base.maxzoom || 14 };
      if (base.bounds) sources.county.bounds = base.bounds;
      layers.push(...countyLayers(base.layer || "rongjiawan"));
    } else if (base && base.available && (base.kind === "xyz" || base.kind === "tianditu")) {
      sources.raster = { type: "raster", tiles: base.tiles, tileSize: 256, attribution: base.attribution || "" };
      layers.push({ id: "raster", type: "raster", source: "raster" });
      if (base.labels) {
        sources.labels = { type: "raster", tiles: base.labels, tileSize: 256 };
        layers.push({ id: "raster-labels", type: "raster", source: "labels" });
      }
    } else {
      sources.county = { type: "geojson", data: geojson || GEOJSON };
      layers.push(...countyLayers(null));
    }
    return { version: 8, sources, layers };
  }

  // -- shapes -----------------------------------------------------------------------
  const point = (lon, lat, props = {}) => ({ type: "Feature", geometry: { type: "Point", coordinates: [lon, lat] }, properties: props });
  const collection = (features) => ({ type: "FeatureCollection", features });
  // Pixels per metre at `lat`, as a zoom expression (MapLibre's 512-px tiles).
  function metresToPixels(lat, metres) {
    const atZero = 78271.517 * Math.cos((lat * Math.PI) / 180);
    return ["interpolate", ["exponential", 2], ["zoom"], 0, ["/", metres, atZero], 22, ["/", metres, atZero / 2 ** 22]];
  }

  function unavailable(container, why) {
    const p = document.createElement("p");
    p.className = "map-unavailable";
    p.textContent = why;
    container.replaceChildren(p);
  }

  // -- the component --------------------------------------------------------------
  // options: { base (a base-map answer; default: ask central), geojson (the
  // county's GeoJSON when drawn without tiles), center, zoom, label (aria),
  // early (resolve once the style is in, before the base map's first tiles:
  // the page's own layers then load beside them, not after), lateNames (the
  // base map's road and place names wait for the page's handle.showNames():
  // drawing their glyphs is work the first picture can do without) }.
  async function create(container, options = {}) {
    if (typeof maplibregl === "undefined") {
      unavailable(container, "地图组件未安装（请运行 scripts/setup）");
      throw new Error("地图组件未安装");
    }
    const base = options.base !== undefined ? options.base : await baseMap();
    let map;
    const mapStyle = style(base, options.geojson);
    const names = mapStyle.layers.filter((l) => l.id === "county-road-name" || l.id === "county-place-name");
    if (options.lateNames) for (const l of names) l.layout = { ...l.layout, visibility: "none" };
    try {
      map = new maplibregl.Map({
        container, style: mapStyle, center: options.center || CENTRE,
        zoom: options.zoom || 13.5, minZoom: 8, maxZoom: 19, attributionControl: false,
        dragRotate: false, pitchWithRotate: false, touchPitch: false,
        localIdeographFontFamily: FONT.join(","), cooperativeGestures: false,
        // The styles are written here, not taken from users: checking them
        // against the style spec costs the first load time and finds nothing.
        validateStyle: false,
        // No label cross-fade: with positions arriving all the time a fade
        // would keep the map repainting every frame.
        fadeDuration: 0,
      });
    } catch (e) {
      unavailable(container, "此浏览器无法显示地图（需要 WebGL）");
      throw new Error("此浏览器无法显示地图（需要 WebGL）");
    }
    map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
    map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
    if (base && base.attribution) map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: base.attribution }));
    container.balingMap = map;  // for tests and the benchmark
    const ready = options.early
      ? new Promise((resolve) => { if (map.style && map.style._loaded) resolve(); else map.once("style.load", resolve); })
      : new Promise((resolve) => { if (map.loaded()) resolve(); else map.once("load", resolve); });
    await ready;
    const markers = new Map();
    const layerGroups = new Map();
    // An empty layer given nothing again is left alone: new data makes the
    // map cut the source's tiles again and draw once more, for nothing.
    const empty = new Set();
    const bulk = new Set();  // layers whose data go to the worker as JSON text
    function update(src, id, data) {
      if (!data.features.length && empty.has(id)) return;
      if (data.features.length) empty.delete(id); else empty.add(id);
      src.setData(bulk.has(id) ? asText(data) : data);
    }
    // Thousands of points (the county's devices): handed to MapLibre's worker
    // as a JSON file it reads itself. Handed as an object, MapLibre copies
    // them field by field on this thread first (seconds at 10,000 on a slow
    // machine); JSON.stringify is native and quick. Such a layer cannot take
    // diffs (updateData); it is redrawn whole.
    function asText(data) {
      const url = URL.createObjectURL(new Blob([JSON.stringify(data)], { type: "application/json" }));
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      return url;
    }

    const handle = {
      map, base,

      // The base map's names, held back by options.lateNames.
      showNames() { for (const l of names) if (map.getLayer(l.id)) map.setLayoutProperty(l.id, "visibility", "visible"); },

      // Points, optionally clustered, with a name label that does not collide.
      // spec: { color: expression or colour, label: property, cluster: bool,
      // radius: px, accuracy: property in metres drawn as a circle, bulk:
      // thousands of points, handed over as JSON text, before: the layer to
      // draw beneath (every helper takes it; default: on top) }.
      points(id, features, spec = {}) {
        const data = collection(features);
        const src = map.getSource(id);
        if (src) { update(src, id, data); return; }
        if (spec.bulk) bulk.add(id);
        map.addSource(id, { type: "geojson", data: spec.bulk ? asText(data) : data, cluster: !!spec.cluster, clusterRadius: 44, clusterMaxZoom: 16 });
        if (!data.features.length) empty.add(id);
        const single = ["!", ["has", "point_count"]];
        const added = [];
        if (spec.cluster) {
          added.push({ id: id + "-cluster", type: "circle", source: id, filter: ["has", "point_count"],
            paint: { "circle-color": spec.clusterColor || "#0b3d5c", "circle-opacity": 0.85, "circle-stroke-color": "#fff", "circle-stroke-width": 2,
              "circle-radius": ["step", ["get", "point_count"], 14, 10, 18, 100, 24, 1000, 30] } });
          added.push({ id: id + "-count", type: "symbol", source: id, filter: ["has", "point_count"],
            layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": FONT, "text-size": 13, "text-allow-overlap": true },
            paint: { "text-color": "#fff" } });
        }
        if (spec.accuracy) {
          added.push({ id: id + "-accuracy", type: "circle", source: id, filter: ["all", single, ["has", spec.accuracy]],
            paint: { "circle-radius": metresToPixels(CENTRE[1], ["get", spec.accuracy]), "circle-color": "#0b3d5c", "circle-opacity": 0.08,
              "circle-stroke-color": "#0b3d5c", "circle-stroke-width": 1, "circle-stroke-opacity": 0.5 } });
        }
        added.push({ id: id + "-point", type: "circle", source: id, filter: single,
          paint: { "circle-radius": spec.radius || 7, "circle-color": spec.color || "#0b3d5c", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } });
        if (spec.label) {
          added.push({ id: id + "-label", type: "symbol", source: id, filter: single,
            layout: { "text-field": ["get", spec.label], "text-font": FONT, "text-size": 13, "text-anchor": "left", "text-offset": [0.9, 0], "text-optional": true },
            paint: { "text-color": "#0b3d5c", "text-halo-color": "#fff", "text-halo-width": 1.5 } });
        }
        for (const layer of added) map.addLayer(layer, spec.before);
        layerGroups.set(id, added.map((l) => l.id));
        if (spec.cluster) {
          map.on("click", id + "-cluster", async (ev) => {
            const f = ev.features[0];
            const zoom = await map.getSource(id).getClusterExpansionZoom(f.properties.cluster_id);
            map.easeTo({ center: f.geometry.coordinates, zoom });
          });
        }
        for (const layer of [id + "-cluster", id + "-point"]) {
          if (!map.getLayer(layer)) continue;
          map.on("mouseenter", layer, () => { map.getCanvas().style.cursor = "pointer"; });
          map.on("mouseleave", layer, () => { map.getCanvas().style.cursor = ""; });
        }
      },

      // Click on a point of layer `id` (not a cluster): fn(properties, [lon, lat]).
      onPoint(id, fn) {
        map.on("click", id + "-point", (ev) => fn(ev.features[0].properties, ev.features[0].geometry.coordinates));
      },

      // Lines: a list of [[lon, lat], ...]; polygons as rings with a label.
      lines(id, paths, spec = {}) {
        const data = collection(paths.filter((p) => p.length > 1).map((p) => ({ type: "Feature", geometry: { type: "LineString", coordinates: p }, properties: {} })));
        if (map.getSource(id)) { update(map.getSource(id), id, data); return; }
        map.addSource(id, { type: "geojson", data });
        if (!data.features.length) empty.add(id);
        const paint = { "line-color": spec.color || "#7c3aed", "line-width": spec.width || 4 };
        if (spec.dash) paint["line-dasharray"] = spec.dash;
        map.addLayer({ id: id + "-line", type: "line", source: id, layout: { "line-cap": "round", "line-join": "round" }, paint }, spec.before);
      },

      polygons(id, features, spec = {}) {
        const data = collection(features);
        if (map.getSource(id)) { update(map.getSource(id), id, data); return; }
        map.addSource(id, { type: "geojson", data });
        if (!data.features.length) empty.add(id);
        map.addLayer({ id: id + "-fill", type: "fill", source: id, paint: { "fill-color": spec.color || "#0b3d5c", "fill-opacity": 0.08 } }, spec.before);
        map.addLayer({ id: id + "-line", type: "line", source: id, paint: { "line-color": spec.color || "#0b3d5c", "line-width": 2, "line-dasharray": [3, 2] } }, spec.before);
        map.addLayer({ id: id + "-label", type: "symbol", source: id,
          layout: { "text-field": ["get", spec.label || "name"], "text-font": FONT, "text-size": 13 },
          paint: { "text-color": spec.color || "#0b3d5c", "text-halo-color": "#fff", "text-halo-width": 1.5 } }, spec.before);
      },

      // Circles of a radius in metres: [{ lon, lat, metres }].
      circles(id, list, spec = {}) {
        const data = collection(list.map((c) => point(c.lon, c.lat, { metres: c.metres })));
        if (map.getSource(id)) { update(map.getSource(id), id, data); return; }
        map.addSource(id, { type: "geojson", data });
        if (!data.features.length) empty.add(id);
        map.addLayer({ id: id + "-circle", type: "circle", source: id,
          paint: { "circle-radius": metresToPixels(CENTRE[1], ["get", "metres"]), "circle-color": spec.color || "#b42318", "circle-opacity": 0.1,
            "circle-stroke-color": spec.color || "#b42318", "circle-stroke-width": 2 } }, spec.before);
      },

      // An HTML marker (an SOS pulse, a playhead, a camera): kept by key, moved
      // when it exists. attrs: { className, title, text, data: {k: v} }.
      marker(key, lon, lat, attrs = {}) {
        let m = markers.get(key);
        if (!m) {
          const el = document.createElement("div");
          m = new maplibregl.Marker({ element: el }).setLngLat([lon, lat]).addTo(map);
          markers.set(key, m);
        } else {
          m.setLngLat([lon, lat]);
        }
        const el = m.getElement();
        // Swap only our own classes: MapLibre keeps its anchor classes there.
        const mine = ["map-marker", ...(attrs.className || "").split(/\s+/).filter(Boolean)];
        for (const c of (el.dataset.classes || "").split(" ").filter(Boolean)) if (!mine.includes(c)) el.classList.remove(c);
        el.classList.add(...mine);
        el.dataset.classes = mine.join(" ");
        if (attrs.title) el.title = attrs.title;
        el.textContent = attrs.text || "";
        for (const [k, v] of Object.entries(attrs.data || {})) el.dataset[k] = v;
        return el;
      },

      // Remove the markers whose key starts with `prefix` and is not in `keep`.
      prune(prefix, keep = new Set()) {
        for (const [key, m] of markers) {
          if (key.startsWith(prefix) && !keep.has(key)) { m.remove(); markers.delete(key); }
        }
      },

      // A tap or click on the map: fn([lon, lat]).
      onClick(fn) { map.on("click", (ev) => fn([ev.lngLat.lng, ev.lngLat.lat])); },

      // Zoom to show every [lon, lat] given (one point: centre on it).
      fit(coords, maxZoom = 16) {
        if (!coords.length) return;
        const b = new maplibregl.LngLatBounds(coords[0], coords[0]);
        for (const c of coords) b.extend(c);
        map.fitBounds(b, { padding: 60, maxZoom, duration: 0 });
      },
    };
    handles.push(handle);
    return handle;
  }

  // Ask for the base map while the rest of the page starts (it is public),
  // and start the map's workers (they parse their own copy of the library).
  if (typeof location !== "undefined" && location.pathname.startsWith("/console")) {
    baseMap();
    if (typeof maplibregl !== "undefined" && maplibregl.prewarm) maplibregl.prewarm();
  }

  return { create, baseMap, style, point, collection, handles };
})();
