"""The base map: which one the consoles and the kiosk draw, and its tiles.

``CENTRAL_MAP_BASE`` picks it (docs/maps.md): ``mbtiles:`` (the vector tiles
the set-up cuts from the shipped GeoJSON), ``mbtiles:PATH`` (a county's own
archive), ``xyz:URL`` (any raster XYZ service) or ``tianditu:KEY`` (天地图).
:func:`parse_base_map` turns the setting into a value without I/O;
``GET /api/v1/maps/base`` tells the browser what to load and
``GET /api/v1/maps/tiles/{z}/{x}/{y}.pbf`` serves the archive's tiles.
Drawing, styling and projections are left to the browser (MapLibre GL JS,
``central/console/map.js``); no coordinate is converted here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi import Path as PathParam
from fastapi.responses import Response

from central.api.deps import ServicesDep, public
from central.errors import ConfigError

logger = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/v1/maps",
    tags=["maps"],
    dependencies=[
        Depends(
            public(
                "the base map of the county, drawn by the consoles' and kiosks' "
                "maps; a 天地图 key is a browser key that any map page shows"
            )
        )
    ],
)
DEFAULT_ARCHIVE = Path(__file__).parents[1] / "console" / "map" / "rongjiawan.mbtiles"
KINDS = ("mbtiles", "xyz", "tianditu")
MAX_ZOOM = 22
# 天地图's Web Mercator ("_w") layers: the vector map and its Chinese labels.
TIANDITU = (
    "https://t{n}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
    "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


class BaseMapError(ConfigError):
    """``map_base`` names no base map Baling can draw."""


@dataclass(frozen=True, slots=True)
class BaseMap:
    """One base map: its kind and the path, URL or key that goes with it."""

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BaseMapError(
                f"expected a base map kind in {KINDS}, got {self.kind!r}"
            )
        if self.kind == "xyz" and not (
            self.value.startswith(("http://", "https://", "/"))
            and all(part in self.value for part in ("{z}", "{x}", "{y}"))
        ):
            raise BaseMapError(
                "expected an http(s) URL with {z}, {x} and {y}, "
                f"got {self.value!r}"
            )
        if self.kind == "tianditu" and not self.value.isalnum():
            raise BaseMapError(
                f"expected a 天地图 key (letters, digits), got {self.value!r}"
            )


def parse_base_map(spec: str) -> BaseMap:
    """Read ``map_base`` (``kind:value``) into a :class:`BaseMap`.

    Args:
        spec: The setting, e.g. ``"mbtiles:"`` or ``"tianditu:0123abcd"``.

    Raises:
        BaseMapError: An unknown kind, an XYZ URL without its placeholders, a
            malformed key.

    Returns:
        The base map.
    """
    kind, sep, value = spec.partition(":")
    if not sep:
        raise BaseMapError(f"expected kind:value, got {spec!r}")
    return BaseMap(kind=kind, value=value)


def describe(base: BaseMap) -> dict[str, Any]:
    """What the browser needs to load ``base`` (no archive is opened here).

    Returns:
        ``kind`` and either vector ``tiles`` (with ``layer``, filled in by the
        route from the archive) or raster ``tiles`` with an ``attribution``.
    """
    if base.kind == "mbtiles":
        return {"kind": "mbtiles", "tiles": ["/api/v1/maps/tiles/{z}/{x}/{y}.pbf"]}
    if base.kind == "xyz":
        return {"kind": "xyz", "tiles": [base.value], "attribution": ""}
    return {
        "kind": "tianditu",
        "tiles": [TIANDITU.format(n=n, layer="vec", key=base.value) for n in range(8)],
        "labels": [TIANDITU.format(n=n, layer="cva", key=base.value) for n in range(8)],
        "attribution": "天地图 · 国家地理信息公共服务平台",
    }


def _archive(base: BaseMap) -> Path:
    return Path(base.value) if base.value else DEFAULT_ARCHIVE


def _connect(path: Path) -> sqlite3.Connection:
    # Read-only: the archive belongs to whoever built it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _metadata(path: Path) -> dict[str, Any]:
    with _connect(path) as conn:
        rows = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
    layers = json.loads(rows.get("json", "{}")).get("vector_layers", [])
    bounds = [float(v) for v in rows.get("bounds", "").split(",") if v]
    return {
        "layer": layers[0]["id"] if layers else "",
        "name": rows.get("name", ""),
        "bounds": bounds if len(bounds) == 4 else None,  # noqa: PLR2004 - w,s,e,n
        "minzoom": int(rows.get("minzoom", 0)),
        "maxzoom": int(rows.get("maxzoom", 14)),
    }


def _base(svc: ServicesDep) -> BaseMap:
    try:
        return parse_base_map(svc.settings.map_base)
    except BaseMapError as exc:
        raise HTTPException(
            status.HTTP_500_INTERNAL_SERVER_ERROR, f"CENTRAL_MAP_BASE: {exc}"
        ) from exc


@router.get("/base")
def base_map(svc: ServicesDep) -> dict[str, Any]:
    """The base map this centre draws on (``available`` false: draw the GeoJSON)."""
    base = _base(svc)
    out = describe(base)
    if base.kind != "mbtiles":
        return out | {"available": True}
    path = _archive(base)
    try:
        meta = _metadata(path)
    except (sqlite3.Error, OSError, ValueError, KeyError) as exc:
        logger.warning("Base map archive %s unreadable: %s", path, exc)
        return out | {"available": False, "reason": f"底图文件不可用：{path.name}"}
    return out | meta | {"available": True}


@router.get(
    "/tiles/{z}/{x}/{y}.pbf",
    responses={
        200: {
            "content": {"application/x-protobuf": {}},
            "description": "The tile (Mapbox Vector Tile, gzip as stored)",
        },
        204: {"description": "No tile there: the map draws nothing"},
    },
)
def tile(
    svc: ServicesDep,
    z: Annotated[int, PathParam(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, PathParam(ge=0)],
    y: Annotated[int, PathParam(ge=0)],
) -> Response:
    """One vector tile of the archive (204 where it has none, as MapLibre expects)."""
    base = _base(svc)
    if base.kind != "mbtiles":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"expected an mbtiles base map, got {base.kind}"
        )
    if x >= 2**z or y >= 2**z:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"expected x and y below {2**z} at zoom {z}, got {x}/{y}",
        )
    try:
        with _connect(_archive(base)) as conn:
            # MBTiles rows are in TMS order: y counts from the south.
            row = conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? "
                "AND tile_row=?",
                (z, x, 2**z - 1 - y),
            ).fetchone()
    except sqlite3.Error as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "底图文件不可用"
        ) from exc
    headers = {"Cache-Control": "public, max-age=3600"}
    if row is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)
    data = bytes(row[0])
    if data[:2] == b"\x1f\x8b":  # ogr2ogr and tippecanoe store tiles gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(
        data, media_type="application/vnd.mapbox-vector-tile", headers=headers
    )
