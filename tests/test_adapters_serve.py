"""`sparrow serve` with HF-native checkpoints (tiny random models saved by Sparrow): an OpenAI chat
request with a video gets the greedy reply that ``sparrow.model.inference.generate`` gives locally."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import torch

from sparrow.adapters import HFModelSpec, build
from sparrow.adapters.tiny import tiny_model
from sparrow.chat.sparrow import SparrowBackend, SparrowConfig
from sparrow.serve import ServeConfig, create_app
from sparrow.serve.server import ServerThread


@pytest.mark.parametrize("family", ["qwen2_vl", "llava_onevision", "idefics3"])
def test_serve_answers_a_chat_request_with_a_video(family: str, tmp_path: Path) -> None:
    from media import write_video

    from sparrow.adapters import load_pretrained
    from sparrow.model.inference import generate
    from sparrow.records import Sample

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model, proc = build(HFModelSpec.from_dict(tiny_model(family)))
    model.save_pretrained(tmp_path / "ckpt", processor=proc)
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "a.mp4", num_frames=20, fps=10, width=32, height=32)
    backend = SparrowBackend(SparrowConfig(str(tmp_path / "ckpt")))
    app = create_app(backend, ServeConfig(video_root=str(tmp_path / "videos"), max_tokens=6))
    content = [
        {"type": "video_url", "video_url": {"url": str(tmp_path / "videos" / "a.mp4")}},
        {"type": "text", "text": "What happens?"},
    ]
    with ServerThread(app) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused", max_retries=0, timeout=60)
        reply = client.chat.completions.create(
            model="ckpt", messages=[{"role": "user", "content": content}], max_tokens=6, temperature=0
        )
    text = reply.choices[0].message.content
    assert reply.usage.completion_tokens >= 1 and reply.usage.prompt_tokens > 10  # visual tokens counted
    local_model, local_proc = load_pretrained(tmp_path / "ckpt")
    sample = Sample.from_dict(
        {
            "id": "q",
            "messages": [{"role": "user", "content": "<video>\nWhat happens?"}],
            "media": [{"type": "video", "path": "a.mp4"}],
        }
    )
    assert text == generate(local_model, local_proc, sample, tmp_path / "videos", max_new_tokens=6)
