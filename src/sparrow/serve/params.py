"""A chat-completions request body -> what to generate, or a :class:`RequestError` a client can act on.

Parameters the server cannot honour are refused (400) rather than ignored, unless they ask for what the
server does anyway (``n: 1``, ``tools: []``, ``stop: null``...): a client that asks for two choices or
for tool calls must not silently get one plain reply. Unknown parameters are refused too, as OpenAI does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sparrow.chat.base import Decoding, Message
from sparrow.serve.config import ServeConfig
from sparrow.serve.messages import RequestError, parse_messages

# Parameters that change nothing here: accepted and ignored.
INFORMATIONAL = {
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
}
# Parameters the server cannot honour, with the values that ask for its own behaviour anyway.
HARMLESS = {
    "n": (1,),
    "modalities": (["text"],),
    "tools": ([],),
    "tool_choice": ("none",),
    "parallel_tool_calls": (True, False),
    "functions": ([],),
    "function_call": ("none",),
    "stop": ([],),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logit_bias": ({},),
    "response_format": ({"type": "text"},),
}
SUPPORTED = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "seed",
    "stream",
    "stream_options",
}


@dataclass(frozen=True)
class ChatParams:
    model: str
    messages: tuple[Message, ...]
    decoding: Decoding
    seed: int
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the token counts


def _number(body: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    v = body.get(name)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not low <= v <= high:
        raise RequestError(f"'{name}' must be a number from {low:g} to {high:g}")
    return float(v)


def _integer(body: dict[str, Any], name: str) -> int | None:
    v = body.get(name)
    if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
        raise RequestError(f"'{name}' must be an integer")
    return v


def _max_tokens(body: dict[str, Any], cfg: ServeConfig) -> int:
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    n = _integer(body, name)
    if n is None:
        return cfg.max_tokens
    if n <= 0:
        raise RequestError(f"'{name}' must be 1 or more, got {n}")
    if n > cfg.max_new_tokens:
        raise RequestError(f"'{name}' {n} is over this server's limit of {cfg.max_new_tokens} new tokens")
    return n


def _same(value: Any, ok: Any) -> bool:
    if isinstance(value, bool) or isinstance(ok, bool):  # True == 1 in Python, not in JSON
        return value is ok
    return (
        type(value) in (int, float)
        and type(ok) in (int, float)
        and value == ok
        or (type(value) is type(ok) and value == ok)
    )


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in SUPPORTED or name in INFORMATIONAL or value is None:
            continue
        if name not in HARMLESS:
            raise RequestError(f"unsupported parameter '{name}'")
        if not any(_same(value, ok) for ok in HARMLESS[name]):
            raise RequestError(f"'{name}' is not supported by this server (it returns one plain reply)")


def _stream(body: dict[str, Any]) -> tuple[bool, bool]:
    stream, options = body.get("stream"), body.get("stream_options")
    if stream is not None and not isinstance(stream, bool):
        raise RequestError("'stream' must be true or false")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise RequestError("'stream_options' must be an object, and only with 'stream': true")
    usage = (options or {}).get("include_usage", False)
    if not isinstance(usage, bool):
        raise RequestError("'stream_options.include_usage' must be true or false")
    return bool(stream), usage


def parse_body(body: Any, cfg: ServeConfig, model: str, greedy_only: bool) -> ChatParams:
    """The request ``body`` (parsed JSON) for the model named ``model``, or a RequestError: 404 when
    it names another model, 400 for anything malformed or unsupported."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    _refuse_unsupported(body)
    asked = body.get("model")
    if asked is not None and not isinstance(asked, str):
        raise RequestError("'model' must be a string")
    if asked is not None and asked != model:
        raise RequestError(f"model {asked[:200]!r} not found; this server serves {model!r}", 404)
    messages = parse_messages(body.get("messages"), cfg.video_root)
    temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
    if greedy_only and temperature > 0:
        raise RequestError(f"{model} decodes greedily: use temperature 0")
    decoding = Decoding(temperature, _number(body, "top_p", 1.0, 0.0, 1.0), _max_tokens(body, cfg))
    if decoding.top_p == 0:
        raise RequestError("'top_p' must be above 0")
    stream, include_usage = _stream(body)
    return ChatParams(model, messages, decoding, _integer(body, "seed") or 0, stream, include_usage)
