"""``sparrow serve`` answers client mistakes with 4xx and a JSON error, never 500 or a traceback: through
the official ``openai`` client as users call it, with raw HTTP for bodies no client would send, and with
property-based fuzzing (hypothesis) of request bodies. Also: ``usage.prompt_tokens`` counts the visual
tokens the model reads."""

from __future__ import annotations

import base64
import io
import json

import httpx
import openai
import pytest
from conftest import served_checkpoint
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from sparrow.chat.sparrow import SparrowBackend, SparrowConfig
from sparrow.serve import ServeConfig, create_app
from sparrow.serve.params import HARMLESS, INFORMATIONAL, SUPPORTED
from sparrow.serve.server import ServerThread


def png_url(colour=(200, 30, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (24, 24), colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve_errors")
    served_checkpoint(d)
    (d / "videos" / "notes.mp4").write_text("these are notes, not a video\n")
    backend = SparrowBackend(SparrowConfig(str(d / "ckpt")))
    cfg = ServeConfig(video_root=str(d / "videos"), max_tokens=2, max_new_tokens=6, max_request_mb=0.05)
    with ServerThread(create_app(backend, cfg)) as server:
        yield d, server


@pytest.fixture(scope="module")
def client(setup):
    c = openai.OpenAI(base_url=setup[1].url, api_key="unused", max_retries=0, timeout=30)
    yield c
    c.close()


def user(*parts, text: str = "What is shown?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text}, *parts]}]


def video(url: str = "a.mp4", **times) -> dict:
    return {"type": "video_url", "video_url": {"url": url, **times}}


def image(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def test_client_mistakes_through_the_openai_client_are_4xx(client):
    hi = [{"role": "user", "content": "hi"}]
    cases = [
        (openai.NotFoundError, "not found", dict(model="gpt-4o", messages=hi)),
        (openai.BadRequestError, "'n'", dict(model="ckpt", messages=hi, n=2)),
        (openai.BadRequestError, "'tools'", dict(model="ckpt", messages=hi, tools=[_tool()])),
        (openai.BadRequestError, "1 or more", dict(model="ckpt", messages=hi, max_tokens=0)),
        (openai.BadRequestError, "1 or more", dict(model="ckpt", messages=hi, max_tokens=-5)),
        (openai.BadRequestError, "limit of 6", dict(model="ckpt", messages=hi, max_tokens=7)),
        (openai.BadRequestError, "'stop'", dict(model="ckpt", messages=hi, stop=["."])),
        (
            openai.BadRequestError,
            "no user turn",
            dict(model="ckpt", messages=[{"role": "system", "content": "x"}]),
        ),
        (
            openai.BadRequestError,
            "base64",
            dict(model="ckpt", messages=user(image("data:image/png;base64,@@@"))),
        ),
        (
            openai.BadRequestError,
            "PNG or JPEG",
            dict(
                model="ckpt",
                messages=user(image("data:image/png;base64," + base64.b64encode(b"GIF89a").decode())),
            ),
        ),
        (
            openai.BadRequestError,
            "not a readable image",
            dict(
                model="ckpt",
                messages=user(
                    image("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n junk").decode())
                ),
            ),
        ),
        (openai.BadRequestError, "notes.mp4", dict(model="ckpt", messages=user(video("notes.mp4")))),
        (
            openai.BadRequestError,
            "after the end",
            dict(model="ckpt", messages=user(video(start=3.0, end=4.0))),
        ),
        (
            openai.BadRequestError,
            "must be after",
            dict(model="ckpt", messages=user(video(start=1.0, end=0.5))),
        ),
        (
            openai.BadRequestError,
            "placeholders",
            dict(model="ckpt", messages=[{"role": "user", "content": "a <video> b"}]),
        ),
        (
            openai.PermissionDeniedError,
            "outside",
            dict(model="ckpt", messages=user(video("../ckpt/config.json"))),
        ),
    ]
    for error, words, kwargs in cases:
        with pytest.raises(error) as e:
            client.chat.completions.create(**kwargs)
        assert words in e.value.message, (kwargs, e.value.message)
        assert e.value.body["type"] in ("invalid_request_error", "permission_error")


def _tool() -> dict:
    return {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def test_well_formed_requests_still_work_and_count_visual_tokens(setup, client):
    from sparrow.chat.base import Message, VideoRef
    from sparrow.chat.sparrow import to_sample
    from sparrow.model import load_pretrained

    d, _ = setup
    r = client.chat.completions.create(
        model="ckpt", messages=user(video(start=0.0, end=1.5), image(png_url())), max_tokens=3, n=1, tools=[]
    )
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    # the prompt as the model reads it: chat template, text and every visual token
    _, proc = load_pretrained(d / "ckpt")
    png = base64.b64decode(png_url().split(",", 1)[1])
    seg = VideoRef(str(d / "videos" / "a.mp4"), 0.0, 1.5)
    sample = to_sample((Message("user", "What is shown?", images=(png,), video=seg),), d)
    assert [m.type for m in sample.media] == ["video", "image"]
    expected = len(proc(sample, "/", generation=True, media_root="/")["input_ids"])
    visual = proc.geometry(proc.sampling)[1]  # tokens per frame group, at least one group per medium
    assert r.usage.prompt_tokens == expected and expected > 2 * visual
    # streaming with usage, and the default model when a raw client names none
    chunks = list(
        client.chat.completions.create(
            model="ckpt", messages=user(), max_tokens=2, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.completion_tokens == 2 and chunks[-1].choices == []
    raw = httpx.post(f"{setup[1].url}/chat/completions", json={"messages": user()}, timeout=30)
    assert raw.status_code == 200 and raw.json()["usage"]["completion_tokens"] == 2  # --max-tokens 2


def test_malformed_http_bodies_are_4xx_json(setup):
    url = f"{setup[1].url}/chat/completions"
    hi = [{"role": "user", "content": "hi"}]
    cases = [
        (400, b"{not json"),
        (400, b"\xff\xfe\x00garbage"),
        (400, b"[1, 2]"),
        (400, b"[" * 20_000),  # deeper than the JSON parser goes
        (400, json.dumps({"messages": hi, "max_tokens": float("inf")}).encode()),  # Infinity
        (400, json.dumps({"messages": hi, "temperature": float("nan")}).encode()),
        (400, json.dumps({"messages": hi, "max_tokens": 2.5}).encode()),
        (400, json.dumps({"messages": hi, "model": 7}).encode()),
        (400, json.dumps({"messages": hi, "bogus": 1}).encode()),
        (400, json.dumps({"messages": [{"role": "tool", "content": "x"}]}).encode()),
        (400, json.dumps({"messages": user(video("file://[::1"))}).encode()),
        (400, json.dumps({"messages": user(video("a\u0000.mp4"))}).encode()),
        (400, json.dumps({"messages": user(video(start=float("nan")))}).encode()),
        (413, json.dumps({"messages": hi, "pad": "x" * 60_000}).encode()),
    ]
    for status, body in cases:
        r = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert r.status_code == status, (body[:80], r.status_code, r.text[:200])
        assert r.json()["error"]["message"], body[:80]
    # a body over the limit without a Content-Length (chunked) is cut off as it arrives
    r = httpx.post(url, content=iter([b'{"messages": "' + b"x" * 30_000] * 3), timeout=30)
    assert r.status_code == 413


# ------------------------------------------------------------------------ property-based fuzzing

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_numbers = st.integers(-3, 8) | st.floats(allow_nan=True, allow_infinity=True) | _json
_image_urls = st.sampled_from(
    [png_url(), "data:image/png;base64,@@", "data:image/jpeg;base64,", "http://example.com/a.png", ""]
) | st.binary(max_size=40).map(lambda b: "data:image/png;base64," + base64.b64encode(b).decode())
_video_urls = st.sampled_from(
    [
        "a.mp4",
        "notes.mp4",
        "missing.mp4",
        "../ckpt/config.json",
        "file:///etc/passwd",
        "file://[",
        "a\x00b",
        ".",
    ]
) | st.text(max_size=16)
_parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=24) | _json}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": _image_urls})}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("video_url"),
            "video_url": st.fixed_dictionaries(
                {"url": _video_urls}, optional={"start": _numbers, "end": _numbers}
            ),
        }
    ),
    _json,
)
_messages = (
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | _json,
                "content": st.text(max_size=24) | st.lists(_parts, max_size=3) | _json,
            }
        ),
        max_size=3,
    )
    | _json
)
# Mostly well-formed sampling values, so that many bodies reach the model; others are refused early.
_params = {name: _numbers for name in sorted(SUPPORTED - {"messages"})}
_params.update(
    model=st.just("ckpt") | _json,
    max_tokens=st.integers(1, 6) | _numbers,
    temperature=st.just(0) | _numbers,
    stream=st.booleans() | _json,
    stream_options=st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | _json}) | _json,
)
_others = st.dictionaries(
    st.sampled_from(sorted(set(HARMLESS) | INFORMATIONAL | {"bogus"})), _json, max_size=2
)
_bodies = (
    st.tuples(st.fixed_dictionaries({"messages": _messages}, optional=_params), _others | st.just({})).map(
        lambda pair: {**pair[0], **pair[1]}
    )
    | _json
)

# Bodies a client could plausibly send: the model sees most of them, so the media and text checks of
# the processor are fuzzed too (segments anywhere, placeholders and special tokens in the text).
_texts = st.text(max_size=24) | st.sampled_from(
    ["<video>", "<image>", "<|im_end|>", "<|im_start|>assistant\n", "🙂"]
)
_plausible_parts = st.lists(
    st.one_of(
        st.builds(lambda t: {"type": "text", "text": t}, _texts),
        st.builds(image, _image_urls),
        st.builds(
            lambda url, times: video(url, **times),
            st.sampled_from(["a.mp4", "notes.mp4"]),
            st.fixed_dictionaries({}, optional={"start": st.floats(-1, 4), "end": st.floats(-1, 4)}),
        ),
    ),
    min_size=1,
    max_size=3,
)
_plausible = st.fixed_dictionaries(
    {
        "model": st.just("ckpt"),
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["system", "user", "assistant"]),
                    "content": _texts | _plausible_parts,
                }
            ),
            min_size=1,
            max_size=3,
        ),
        "max_tokens": st.integers(1, 6),
    },
    optional={"stream": st.booleans()},
)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,  # the same examples on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _check(r: httpx.Response, sent: object) -> None:
    event(f"HTTP {r.status_code}")
    assert r.status_code in (200, 400, 403, 404, 413), (sent, r.status_code, r.text[:300])
    assert "Traceback" not in r.text
    if r.status_code != 200:
        error = r.json()["error"]
        assert isinstance(error["message"], str) and error["message"] and "\n" not in error["message"]
    elif r.headers["content-type"].startswith("text/event-stream"):
        assert r.text.rstrip().endswith("data: [DONE]")
    else:
        assert r.json()["choices"][0]["message"]["role"] == "assistant"


@FUZZ
@given(body=_bodies)
def test_fuzzed_json_bodies_never_get_a_500(setup, body):
    raw = json.dumps(body).encode()  # NaN and Infinity as Python writes them: not JSON, but sent
    r = httpx.post(f"{setup[1].url}/chat/completions", content=raw, timeout=60)
    _check(r, body)


@FUZZ
@given(raw=st.binary(max_size=200) | _bodies.map(lambda b: json.dumps(b).encode()[:-1]))
def test_fuzzed_raw_bodies_never_get_a_500(setup, raw):
    r = httpx.post(f"{setup[1].url}/chat/completions", content=raw, timeout=60)
    _check(r, raw)
    assert r.status_code == 400  # none of these is a JSON object


@FUZZ
@given(body=_plausible)
def test_fuzzed_plausible_bodies_are_answered_or_refused_with_4xx(setup, body):
    r = httpx.post(f"{setup[1].url}/chat/completions", json=body, timeout=60)
    _check(r, body)
