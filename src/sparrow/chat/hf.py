"""A local transformers causal LM by path (the packaged SmolLM2-135M-Instruct by default), batched.

Requests are grouped by decoding parameters and seed and generated ``batch_size`` at a time with left
padding (CPU generation is slow token by token, so batching is where the speed is). Sampled decoding
(temperature > 0) draws from a generator seeded with the batch's seed inside a forked RNG, so the
process's global random state is left alone; greedy decoding (the default) does not depend on the
batch. A row stops as soon as its last line repeats an earlier one: small LMs fall into loops that would
otherwise run to ``max_tokens`` and hold the whole batch (the parser drops the repeated line).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparrow.captions import repeats_a_line
from sparrow.chat.base import Backend, BackendError, Decoding, Request, Response
from sparrow.hf_logging import quiet_hf

DEFAULT_PART = "smollm2-135m-instruct"


@dataclass(frozen=True)
class HFConfig:
    path: str | None = None  # a Hugging Face model folder; None: the packaged SmolLM2
    batch_size: int = 8
    device: str = "cpu"
    dtype: str = "float32"


class LoopStop:
    """A stopping criterion (transformers calls it with the ids so far, one verdict per row): a row is done
    when a newline has just closed a line that repeats an earlier line of its reply."""

    def __init__(self, tokenizer: Any, prompt_length: int):
        self.tok, self.start = tokenizer, prompt_length

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for i, row in enumerate(input_ids):
            if "\n" in self.tok.decode(row[-1:]):
                done[i] = repeats_a_line(self.tok.decode(row[self.start :], skip_special_tokens=True))
        return done


class HFBackend(Backend):
    name = "hf"

    def __init__(self, cfg: HFConfig):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if cfg.batch_size < 1:
            raise BackendError("batch size must be at least 1")
        if cfg.path is None:
            from sparrow.pretrained import PartError, prepare_part

            try:
                path = prepare_part(DEFAULT_PART)
            except PartError as e:
                raise BackendError(str(e)) from e
            self.model = DEFAULT_PART
        else:
            path = Path(cfg.path)
            if not path.is_dir():
                raise BackendError(f"model folder not found: {path}")
            self.model = path.resolve().name
        self.cfg = cfg

        try:
            with quiet_hf():
                self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
                self._lm = AutoModelForCausalLM.from_pretrained(
                    str(path), local_files_only=True, dtype=getattr(torch, cfg.dtype)
                ).to(cfg.device)
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load a causal LM from {path}: {str(e).splitlines()[0]}") from e
        self._lm.eval()
        self._tok.padding_side = "left"
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token

    def _prompt(self, req: Request) -> str:
        if any(m.images or m.video for m in req.messages):
            raise BackendError("the hf backend reads text only (use openai or sparrow for images and video)")
        chat = [{"role": m.role, "content": m.text} for m in req.messages]
        return self._tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)

    def complete(self, requests: list[Request]) -> list[Response]:
        out: list[Response | None] = [None] * len(requests)
        prompts: dict[int, str] = {}
        for i, r in enumerate(requests):
            try:
                prompts[i] = self._prompt(r)
            except BackendError as e:
                out[i] = Response(error=str(e))
        groups: dict[tuple[Decoding, int], list[int]] = {}
        for i in prompts:
            groups.setdefault((requests[i].decoding, requests[i].seed), []).append(i)
        for (decoding, seed), idx in groups.items():
            for k in range(0, len(idx), self.cfg.batch_size):
                chunk = idx[k : k + self.cfg.batch_size]
                for i, resp in zip(
                    chunk, self._generate([prompts[i] for i in chunk], decoding, seed), strict=True
                ):
                    out[i] = resp
        return [r if r is not None else Response(error="not generated") for r in out]

    def _generate(self, prompts: list[str], decoding: Decoding, seed: int) -> list[Response]:
        import torch

        t0 = time.perf_counter()
        enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.cfg.device
        )
        kwargs: dict[str, Any] = {
            "max_new_tokens": decoding.max_tokens,
            "pad_token_id": self._tok.pad_token_id,
            "stopping_criteria": [LoopStop(self._tok, enc["input_ids"].shape[1])],
        }
        if decoding.temperature > 0:
            kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        # Only the CPU generator is forked on a CPU run (forking CUDA there would initialise it).
        devices = [] if self.cfg.device == "cpu" else None
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(seed)
            gen = self._lm.generate(**enc, **kwargs)
        new = gen[:, enc["input_ids"].shape[1] :]
        seconds = (time.perf_counter() - t0) / len(prompts)
        out = []
        eos = {self._tok.eos_token_id, self._tok.pad_token_id}
        for row, mask in zip(new.tolist(), enc["attention_mask"], strict=True):
            n = next((j for j, t in enumerate(row) if t in eos), len(row))
            out.append(
                Response(
                    text=self._tok.decode(row[:n], skip_special_tokens=True).strip(),
                    prompt_tokens=int(mask.sum()),
                    completion_tokens=n,
                    seconds=seconds,
                    calls=1,
                )
            )
        return out
