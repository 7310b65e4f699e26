"""Request validation errors with a Chinese message per field, for the consoles.

FastAPI answers a request that does not validate with 422 and pydantic's
error list in ``detail`` (English, for API clients). :func:`translate_errors`
keeps that list as it is and adds to each error a ``message`` in Chinese
naming the field ("「周期」不能大于 180"), and :func:`validation_handler`
adds the messages joined as a top-level ``message`` that the console shows.
Pure apart from the handler; Open311's own error format is left to
:mod:`central.api.open311` (its paths keep FastAPI's default answer).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import status
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.responses import Response

# The fields people fill in on the consoles, by their API name.
FIELDS: Mapping[str, str] = {
    "ttl_h": "有效期（小时）",
    "kind": "设备类型",
    "site": "站点",
    "username": "用户名",
    "password": "密码",
    "role": "角色",
    "scope": "辖区",
    "name": "名称",
    "title": "标题",
    "body": "内容",
    "text": "内容",
    "note": "说明",
    "description": "描述",
    "department": "承办部门",
    "service_code": "投诉类别",
    "phone": "电话",
    "place": "地点",
    "plate": "车牌号",
    "category": "布控类别",
    "responders": "出警警员",
    "target": "对象",
    "audience": "发送对象",
    "priority": "级别",
    "version": "版本",
    "waves": "批次",
    "wave_sizes": "每批台数",
    "halt_after": "失败即停台数",
    "cycle_s": "周期（秒）",
    "green_s": "绿灯（秒）",
    "limit": "条数",
    "offset": "起始位置",
    "limit_days": "办理时限（天）",
    "buffer_m": "缓冲距离（米）",
    "radius_m": "半径（米）",
    "lat": "纬度",
    "lon": "经度",
    "from": "开始时间",
    "to": "结束时间",
    "values": "配置值",
    "members": "成员",
    "head": "负责人",
    "score": "评分",
    "rating": "评分",
    "code": "代码",
    "day": "日期",
    "workday": "是否工作日",
}
WHERE: Mapping[str, str] = {
    "body": "",
    "query": "查询参数",
    "path": "路径参数",
    "header": "请求头",
    "cookie": "Cookie",
}


def field_name(loc: Sequence[str | int]) -> str:
    """The Chinese name of the field an error is about (its last named part).

    >>> field_name(("body", "ttl_h"))
    '有效期（小时）'
    >>> field_name(("body", "members", 3))
    '成员第 4 项'
    """
    parts = [p for p in loc if p not in WHERE]
    if not parts:
        return "请求内容"
    last = parts[-1]
    if isinstance(last, int):
        named = [p for p in parts if isinstance(p, str)]
        base = FIELDS.get(named[-1], named[-1]) if named else "列表"
        return f"{base}第 {last + 1} 项"
    return FIELDS.get(last, last)


def _limit(ctx: Mapping[str, Any], key: str) -> str:
    return str(ctx.get(key, ""))


def _expected(ctx: Mapping[str, Any]) -> str:
    return str(ctx.get("expected", "")).replace(" or ", "、").replace("'", "")


MESSAGES: Mapping[str, str] = {
    "missing": "「{f}」必须填写",
    "greater_than_equal": "「{f}」不能小于 {ge}",
    "greater_than": "「{f}」必须大于 {gt}",
    "less_than_equal": "「{f}」不能大于 {le}",
    "less_than": "「{f}」必须小于 {lt}",
    "string_too_short": "「{f}」至少 {min_length} 个字",
    "string_too_long": "「{f}」最多 {max_length} 个字",
    "too_short": "「{f}」至少要有 {min_length} 项",
    "too_long": "「{f}」最多 {max_length} 项",
    "int_parsing": "「{f}」应为整数",
    "int_from_float": "「{f}」应为整数",
    "int_type": "「{f}」应为整数",
    "float_parsing": "「{f}」应为数字",
    "float_type": "「{f}」应为数字",
    "bool_parsing": "「{f}」应为是或否",
    "bool_type": "「{f}」应为是或否",
    "string_type": "「{f}」应为文字",
    "list_type": "「{f}」应为列表",
    "dict_type": "「{f}」格式不对",
    "model_type": "「{f}」格式不对",
    "model_attributes_type": "「{f}」格式不对",
    "literal_error": "「{f}」只能是 {expected}",
    "enum": "「{f}」只能是 {expected}",
    "string_pattern_mismatch": "「{f}」格式不对",
    "datetime_parsing": "「{f}」不是有效的时间",
    "datetime_from_date_parsing": "「{f}」不是有效的时间",
    "datetime_type": "「{f}」不是有效的时间",
    "date_parsing": "「{f}」不是有效的日期",
    "date_from_datetime_parsing": "「{f}」不是有效的日期",
    "time_parsing": "「{f}」不是有效的时刻",
    "uuid_parsing": "「{f}」不是有效的编号",
    "url_parsing": "「{f}」不是有效的网址",
    "extra_forbidden": "不认识的字段「{f}」",
    "json_invalid": "请求内容不是有效的 JSON",
    "value_error": "「{f}」不正确：{msg}",
    "assertion_error": "「{f}」不正确：{msg}",
}


def translate(error: Mapping[str, Any]) -> str:
    """One pydantic error as a Chinese sentence naming its field.

    >>> translate({"type": "greater_than_equal", "loc": ("body", "ttl_h"),
    ...            "msg": "Input should be greater than or equal to 1",
    ...            "ctx": {"ge": 1}})
    '「有效期（小时）」不能小于 1'
    """
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    loc = tuple(error.get("loc") or ())
    template = MESSAGES.get(str(error.get("type", "")))
    f = field_name(loc)
    if template is None:
        return f"「{f}」不正确"
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    return template.format(
        f=f,
        msg=msg,
        expected=_expected(ctx),
        **{k: _limit(ctx, k) for k in ("ge", "gt", "le", "lt")},
        **{k: _limit(ctx, k) for k in ("min_length", "max_length")},
    )


def translate_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's error list, each error with its Chinese ``message`` added."""
    return [{**e, "message": translate(e)} for e in errors]


async def validation_handler(request: Request, exc: RequestValidationError) -> Response:
    """422 with ``detail`` as FastAPI gives it plus the Chinese messages.

    Open311's paths keep FastAPI's own answer: its clients read the spec's
    format, and the routes turn their own errors into it.
    """
    if not request.url.path.startswith("/api/"):
        return await request_validation_exception_handler(request, exc)
    detail = translate_errors(exc.errors())
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content={
            "detail": jsonable_encoder(detail),
            "message": "；".join(dict.fromkeys(d["message"] for d in detail)),
        },
    )
