"""The base-map setting and the tile route, read back by GDAL's own MVT reader.

The archive is cut by ogr2ogr (the tool the set-up uses) from the GeoJSON
central ships; the tile central serves is opened by ``ogrinfo`` with its
tile address, so the roads must come back at their real coordinates.
"""

from __future__ import annotations

import gzip
import math
import shutil
import subprocess
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from support.central import central_services

from central.api.maps import BaseMapError, describe, parse_base_map
from central.app import create_app
from central.settings import CentralSettings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

GEOJSON = "central/console/map/rongjiawan.geojson"
STATION = (113.1180, 29.1450)  # on 建设路, the centre of the shipped map


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ (slippy map) tile holding lon/lat, by the OSM wiki's formula."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    rad = math.radians(lat)
    y = int((1 - math.asinh(math.tan(rad)) / math.pi) / 2 * n)
    return x, y


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; scripts/setup installs gdal-bin")
    return path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """The shipped GeoJSON cut into vector tiles, as the set-up does."""
    out = tmp_path / "county.mbtiles"
    subprocess.run(
        [
            _tool("ogr2ogr"),
            "-q",
            "-f",
            "MBTiles",
            str(out),
            GEOJSON,
            "-nln",
            "rongjiawan",
            "-dsco",
            "MINZOOM=10",
            "-dsco",
            "MAXZOOM=16",
        ],
        check=True,
    )
    return out


@contextmanager
def _client(tmp_path: Path, map_base: str) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    svc = central_services(url, tmp_path, settings={"map_base": map_base})
    try:
        with TestClient(create_app(svc)) as client:
            yield client
    finally:
        svc.engine.dispose()


def test_the_setting_names_a_kind_and_its_value() -> None:
    assert parse_base_map("mbtiles:").value == ""
    assert parse_base_map("tianditu:abc123").kind == "tianditu"
    xyz = parse_base_map("xyz:https://tiles.example.cn/{z}/{x}/{y}.png")
    assert describe(xyz)["tiles"] == ["https://tiles.example.cn/{z}/{x}/{y}.png"]
    with pytest.raises(BaseMapError, match="expected kind:value"):
        parse_base_map("osm")
    with pytest.raises(BaseMapError, match="got 'gcj02'"):
        parse_base_map("gcj02:amap")
    with pytest.raises(BaseMapError, match=r"\{z\}, \{x\} and \{y\}"):
        parse_base_map("xyz:https://tiles.example.cn/tile.png")
    with pytest.raises(BaseMapError, match="天地图 key"):
        parse_base_map("tianditu:a&b=1")


def test_tianditu_is_web_mercator_with_its_labels() -> None:
    out = describe(parse_base_map("tianditu:0123abcd"))
    assert len(out["tiles"]) == 8  # t0 … t7, as 天地图 balances its load
    assert "vec_w/wmts" in out["tiles"][0]
    assert "TILEMATRIXSET=w" in out["tiles"][0]
    assert "tk=0123abcd" in out["tiles"][0]
    assert "cva_w/wmts" in out["labels"][0]  # the Chinese place names
    assert "天地图" in out["attribution"]


def test_the_archive_is_served_and_gdal_reads_it_back(
    tmp_path: Path, archive: Path
) -> None:
    with _client(tmp_path, f"mbtiles:{archive}") as client:
        base = client.get("/api/v1/maps/base").json()
        assert base["available"] is True
        assert base["layer"] == "rongjiawan"
        assert base["tiles"] == ["/api/v1/maps/tiles/{z}/{x}/{y}.pbf"]
        assert base["minzoom"] == 10
        assert base["maxzoom"] == 16
        west, south, east, north = base["bounds"]
        assert west < STATION[0] < east
        assert south < STATION[1] < north

        z = 14
        x, y = _tile(*STATION, z)
        got = client.get(f"/api/v1/maps/tiles/{z}/{x}/{y}.pbf")
        assert got.status_code == 200
        assert got.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        # TestClient (httpx) undoes the Content-Encoding: gzip for us.
        assert got.headers["content-encoding"] == "gzip"
        tile = tmp_path / "tile.pbf"
        tile.write_bytes(got.content)
        info = subprocess.run(
            [
                _tool("ogrinfo"),
                "-ro",
                "-al",
                "-oo",
                f"X={x}",
                "-oo",
                f"Y={y}",
                "-oo",
                f"Z={z}",
                str(tile),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert "name (String) = 建设路" in info
        # GDAL georeferences the tile in Web Mercator: the road is where it is.
        assert "LINESTRING" in info

        # MBTiles rows count from the south (TMS); the route counts from the
        # north like every web map, so the mirrored row is empty.
        mirrored = 2**z - 1 - y
        assert (
            client.get(f"/api/v1/maps/tiles/{z}/{x}/{mirrored}.pbf").status_code == 204
        )


def test_tile_addresses_are_bounded(tmp_path: Path, archive: Path) -> None:
    with _client(tmp_path, f"mbtiles:{archive}") as client:
        bad = client.get("/api/v1/maps/tiles/3/8/0.pbf")
        assert bad.status_code == 422
        assert "expected x and y below 8 at zoom 3, got 8/0" in bad.json()["detail"]
        assert client.get("/api/v1/maps/tiles/23/0/0.pbf").status_code == 422
        assert client.get("/api/v1/maps/tiles/-1/0/0.pbf").status_code == 422


def test_a_missing_archive_says_so_and_the_page_draws_the_geojson(
    tmp_path: Path,
) -> None:
    with _client(tmp_path, f"mbtiles:{tmp_path / 'none.mbtiles'}") as client:
        base = client.get("/api/v1/maps/base").json()
        assert base["available"] is False
        assert base["reason"] == "底图文件不可用：none.mbtiles"
        assert client.get("/api/v1/maps/tiles/14/0/0.pbf").status_code == 503


def test_raster_base_maps_have_no_tile_route(tmp_path: Path) -> None:
    spec = "xyz:https://tiles.example.cn/{z}/{x}/{y}.png"
    with _client(tmp_path, spec) as client:
        base = client.get("/api/v1/maps/base").json()
        assert base == {
            "kind": "xyz",
            "tiles": ["https://tiles.example.cn/{z}/{x}/{y}.png"],
            "attribution": "",
            "available": True,
        }
        missing = client.get("/api/v1/maps/tiles/14/0/0.pbf")
        assert missing.status_code == 404
        assert "expected an mbtiles base map, got xyz" in missing.json()["detail"]


def test_a_bad_setting_fails_fast() -> None:
    with pytest.raises(ValueError, match="map_base"):
        CentralSettings(
            database_url="sqlite://", jwt_secret="s" * 40, map_base="amap:key"
        )


def test_the_tile_is_gzip_as_stored(tmp_path: Path, archive: Path) -> None:
    import sqlite3  # noqa: PLC0415 - read the archive as a third party would

    with sqlite3.connect(archive) as conn:
        (blob,) = conn.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
    assert gzip.decompress(blob)[:1] == b"\x1a"  # protobuf field 3: a layer
