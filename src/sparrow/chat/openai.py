"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp, Ollama, a hosted API, or
``sparrow serve``): text, images (data URLs) and videos (``video_url`` with a path, which vLLM and
``sparrow serve`` read), a concurrency limit, and retries with exponential backoff and full jitter that
wait at least as long as a ``Retry-After`` header asks. The API key is read only from the environment
variable the user names; it is never taken from a flag or written anywhere.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from sparrow.chat.base import (
    Backend,
    BackendError,
    Message,
    Request,
    Response,
    data_url,
    estimate_tokens,
)


def retryable(status: int) -> bool:
    """Worth asking again: a timeout (408), rate limiting (429) or a server error (5xx). Any other 4xx
    says the request itself is wrong, and the same request would fail the same way."""
    return status in (408, 429) or 500 <= status < 600


@dataclass(frozen=True)
class OpenAIConfig:
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str | None = None  # None: the first model the server lists
    api_key_env: str | None = None  # name of the environment variable holding the key
    concurrency: int = 4  # requests in flight at once
    timeout: float = 120.0  # seconds per attempt
    retries: int = 5  # attempts after the first
    backoff: float = 1.0  # first delay cap, doubled per attempt
    max_backoff: float = 60.0  # longest wait, Retry-After included


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def message_json(m: Message) -> dict[str, Any]:
    if not m.images and m.video is None:
        return {"role": m.role, "content": m.text}
    parts: list[dict[str, Any]] = []
    if m.video is not None:
        video: dict[str, Any] = {"url": m.video.path}
        if m.video.start is not None:
            video["start"] = m.video.start
        if m.video.end is not None:
            video["end"] = m.video.end
        parts.append({"type": "video_url", "video_url": video})
    parts += [{"type": "image_url", "image_url": {"url": data_url(b)}} for b in m.images]
    parts.append({"type": "text", "text": m.text})
    return {"role": m.role, "content": parts}


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(
        self,
        cfg: OpenAIConfig,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        if cfg.concurrency < 1 or cfg.retries < 0:
            raise BackendError("concurrency must be at least 1 and retries at least 0")
        headers = {}
        if cfg.api_key_env:
            key = (os.environ if env is None else env).get(cfg.api_key_env)
            if not key:
                raise BackendError(f"environment variable {cfg.api_key_env} holds no API key")
            headers["Authorization"] = f"Bearer {key}"
        self.cfg, self._sleep, self._jitter = cfg, sleep, random.Random()
        self._client = httpx.Client(
            base_url=cfg.base_url.rstrip("/") + "/", headers=headers, timeout=cfg.timeout, transport=transport
        )
        self.model = cfg.model or self._first_model()

    def _first_model(self) -> str:
        try:
            r = self._client.get("models")
            r.raise_for_status()
            return str(r.json()["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
            raise BackendError(f"cannot list models at {self.cfg.base_url}: {str(e).splitlines()[0]}") from e

    def complete(self, requests: list[Request]) -> list[Response]:
        if len(requests) <= 1 or self.cfg.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(self._one, requests))

    def _delay(self, attempt: int, asked: float | None) -> float:
        cap = min(self.cfg.max_backoff, self.cfg.backoff * 2**attempt)
        wait = self._jitter.uniform(0.0, cap)  # full jitter spreads clients that failed together
        return min(self.cfg.max_backoff, max(wait, asked or 0.0))

    def _payload(self, req: Request) -> dict[str, Any]:
        s = req.decoding
        return {
            "model": self.model,
            "messages": [message_json(m) for m in req.messages],
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
            "seed": req.seed,
        }

    def _one(self, req: Request) -> Response:
        t0 = time.perf_counter()
        try:
            payload = self._payload(req)
        except BackendError as e:
            return Response(error=str(e))
        reason = ""
        for attempt in range(self.cfg.retries + 1):
            asked = None
            try:
                r = self._client.post("chat/completions", json=payload)
            except httpx.TimeoutException:
                reason = f"timed out after {self.cfg.timeout:g}s"
            except httpx.TransportError as e:
                reason = f"connection failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            else:
                if r.status_code == 200:
                    return self._parse(r, req, attempt + 1, time.perf_counter() - t0)
                reason = (
                    f"HTTP {r.status_code}: {r.text.strip().splitlines()[0][:200] if r.text.strip() else ''}"
                )
                if not retryable(r.status_code):
                    return Response(error=reason, calls=attempt + 1, seconds=time.perf_counter() - t0)
                asked = retry_after(r.headers.get("retry-after"))
            if attempt < self.cfg.retries:
                self._sleep(self._delay(attempt, asked))
        return Response(
            error=f"gave up after {self.cfg.retries + 1} attempts: {reason}",
            calls=self.cfg.retries + 1,
            seconds=time.perf_counter() - t0,
        )

    def _parse(self, r: httpx.Response, req: Request, calls: int, seconds: float) -> Response:
        try:
            body = r.json()
            text = body["choices"][0]["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return Response(
                error=f"unreadable reply: {str(e).splitlines()[0][:200]}", calls=calls, seconds=seconds
            )
        usage = body.get("usage") or {}
        prompt = sum(estimate_tokens(m.text) for m in req.messages)
        return Response(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or prompt),
            completion_tokens=int(usage.get("completion_tokens") or estimate_tokens(text)),
            seconds=seconds,
            calls=calls,
        )

    def close(self) -> None:
        self._client.close()
