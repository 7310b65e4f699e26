"""Nothing unbounded is accepted: every str, list and dict field has a maximum.

Walks every pydantic model in ``edge.protocol`` (the wire contract) and every
request body model of central's routes, nested models included, and fails
naming each str/bytes/list/dict field (or list/dict item of str) without a
``max_length``. A new field that forgets fails here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from typing import TYPE_CHECKING, Any

import annotated_types
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from support.central import central_services

import edge.protocol
from central.app import create_app
from edge.protocol.messages import CameraConfig, validate_config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


SIZED = (str, bytes, list, dict, tuple, set, frozenset)


def _bounded(metadata: list[Any]) -> bool:
    return any(
        isinstance(m, annotated_types.MaxLen)
        or getattr(m, "max_length", None)
        or (isinstance(m, FieldInfo) and _bounded(list(m.metadata)))
        for m in metadata
    )


def _problems(tp: Any, where: str, *, bounded: bool) -> Iterator[str]:
    """The unbounded sized types inside ``tp`` (``bounded``: the outer one is)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(tp)
        yield from _problems(inner, where, bounded=bounded or _bounded(meta))
        return
    if origin in {typing.Union, types.UnionType}:
        for arg in typing.get_args(tp):
            yield from _problems(arg, where, bounded=bounded)
        return
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        yield from _model_problems(tp)
        return
    sized = tp in SIZED or origin in SIZED
    if sized and not bounded and not _fixed_tuple(tp):
        yield f"{where}: {tp}"
    items = typing.get_args(tp) if origin in {list, tuple, set} else ()
    if origin is dict:  # keys are bounded by the size of the whole body
        items = typing.get_args(tp)[1:]
    for arg in items:
        if arg is not Ellipsis:
            yield from _problems(arg, f"{where}[item]", bounded=False)


def _fixed_tuple(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and bool(args) and Ellipsis not in args


_SEEN: set[type[BaseModel]] = set()


def _model_problems(model: type[BaseModel]) -> Iterator[str]:
    if model in _SEEN:
        return
    _SEEN.add(model)
    for name, field in model.model_fields.items():
        where = f"{model.__module__}.{model.__qualname__}.{name}"
        yield from _problems(
            field.annotation, where, bounded=_bounded(list(field.metadata))
        )


def _wire_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for info in pkgutil.iter_modules(edge.protocol.__path__):
        module = importlib.import_module(f"edge.protocol.{info.name}")
        found += [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj)
            and issubclass(obj, BaseModel)
            and obj.__module__ == module.__name__
        ]
    return found


def test_every_wire_model_bounds_its_strings_lists_and_dicts() -> None:
    models = _wire_models()
    assert len(models) > 20  # the walk sees the wire contract
    _SEEN.clear()
    problems = [p for m in models for p in _model_problems(m)]
    assert problems == []


def test_the_walk_catches_an_unbounded_field() -> None:
    class Loose(BaseModel):
        name: str
        tags: list[str] = []

    _SEEN.clear()
    assert len(list(_model_problems(Loose))) == 3  # name, tags, a tag


def test_an_oversize_camera_config_string_is_refused() -> None:
    # Finding 4: a 1.1 MB junction name set through policy wedged the link.
    assert CameraConfig(junction="j" * 64).junction
    with pytest.raises(ValueError, match="at most 64"):
        validate_config("camera", {"junction": "j" * 1_100_000})


def _body_models(tmp_path: Path) -> list[tuple[str, Any]]:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    svc = central_services(url, tmp_path)
    app = create_app(svc)
    svc.engine.dispose()
    spec_routes = list(_flatten(app.routes))
    return [
        (f"{sorted(r.methods or ())} {r.path} {p.name}", p.field_info)
        for r in spec_routes
        for p in r.dependant.body_params
    ]


def _flatten(routes: Any) -> Iterator[Any]:
    from fastapi.routing import APIRoute  # noqa: PLC0415

    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from _flatten(original.routes)


def test_every_request_body_bounds_its_strings_lists_and_dicts(tmp_path: Path) -> None:
    bodies = _body_models(tmp_path)
    assert len(bodies) > 20
    _SEEN.clear()
    problems = [
        p
        for where, info in bodies
        for p in _problems(
            info.annotation, where, bounded=_bounded(list(info.metadata))
        )
    ]
    assert problems == []
