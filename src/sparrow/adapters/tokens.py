"""Tokenizers for the HF-native families: the checkpoint's own, or Sparrow's tiny one (tests, offline)
with the special tokens the family's prompts use added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparrow.adapters.spec import AdapterError

# The placeholder and wrapper tokens each family's prompts are made of (the checkpoints ship them).
FAMILY_TOKENS = {
    "qwen2_vl": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    "llava_onevision": ["<image>", "<video>"],
    "idefics3": ["<fake_token_around_image>", "<global-img>", "<image>", "<end_of_utterance>"],
}


def family_tokenizer(source: str | None, path: str | None, family: str) -> Any:
    """``source``: ``tiny``, a folder, or None (the checkpoint folder ``path``). A tokenizer missing a
    family token is refused (a real checkpoint has them; the tiny one gets them added)."""
    from transformers import AutoTokenizer

    from sparrow.model.tokenizer import build_tiny_tokenizer

    needed = FAMILY_TOKENS[family]
    if source == "tiny":
        tok = build_tiny_tokenizer()
        tok.add_special_tokens({"extra_special_tokens": needed}, replace_extra_special_tokens=False)
    else:
        where = source or path
        if not where or not Path(where).is_dir():
            raise AdapterError(f"tokenizer folder {where!r} does not exist")
        tok = AutoTokenizer.from_pretrained(where, local_files_only=True)
        missing = [t for t in needed if t not in tok.get_vocab()]
        if missing:
            raise AdapterError(f"tokenizer in {where!r} lacks the {family} token(s) {missing}")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        from sparrow.model.tokenizer import CHATML_TEMPLATE

        tok.chat_template = CHATML_TEMPLATE
    return tok


def end_of_turn_ids(tok: Any) -> list[int]:
    """Token ids that end an assistant reply (EOS, ChatML's ``<|im_end|>``, Idefics3's
    ``<end_of_utterance>``)."""
    ids = {tok.eos_token_id}
    vocab = tok.get_vocab()
    for t in ("<|im_end|>", "<end_of_utterance>"):
        if t in vocab:
            ids.add(vocab[t])
    return sorted(i for i in ids if isinstance(i, int) and i >= 0)
