"""A content-addressed response cache: a second identical run makes no backend calls.

The key is the sha256 of the backend's name and model, the template version, the rendered messages
(images by hash), the decoding settings and the seed. Each entry is one JSON file under
``ROOT/ab/abcdef...json``, written atomically, so parallel workers and killed runs never leave a
half-written entry. Failed responses are not cached: a rerun retries them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from sparrow.chat.base import Backend, Request, Response
from sparrow.io import atomic_write_text


class ResponseCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def key(self, backend: str, model: str, request: Request) -> str:
        material = {"backend": backend, "model": model, **request.key()}
        blob = json.dumps(material, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Response | None:
        try:
            d = json.loads(self._path(key).read_text(encoding="utf-8"))
            return Response(
                text=d["text"],
                prompt_tokens=int(d["prompt_tokens"]),
                completion_tokens=int(d["completion_tokens"]),
                seconds=0.0,
                cached=True,
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent or unreadable: ask the backend again

    def put(self, key: str, response: Response) -> None:
        entry = {
            "text": response.text,
            "prompt_tokens": response.prompt_tokens,
            "completion_tokens": response.completion_tokens,
        }
        atomic_write_text(self._path(key), json.dumps(entry, ensure_ascii=False) + "\n")


class CachedBackend(Backend):
    """Serves what ``cache`` holds and sends only the misses, as one batch, to ``inner``."""

    def __init__(self, inner: Backend, cache: ResponseCache):
        self.inner, self.cache = inner, cache
        self.name, self.model = inner.name, inner.model

    def complete(self, requests: list[Request]) -> list[Response]:
        keys = [self.cache.key(self.inner.name, self.inner.identity, r) for r in requests]
        out: list[Response | None] = [self.cache.get(k) for k in keys]
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:
            fresh = self.inner.complete([requests[i] for i in missing])
            for i, resp in zip(missing, fresh, strict=True):
                if resp.error is None:
                    self.cache.put(keys[i], resp)
                out[i] = resp
        return [r for r in out if r is not None]

    def close(self) -> None:
        self.inner.close()
