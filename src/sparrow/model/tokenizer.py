"""The model's tokenizer: a tiny byte-level BPE built on the spot (tests need no download), or the LM's own.

Trained deterministically with the ``tokenizers`` library on a small built-in corpus (the words of the
procedural world, the multiple-choice format, timestamps, pseudo-video text), wrapped as a
``PreTrainedTokenizerFast`` with a ChatML chat template and the visual placeholder as a special token.
Byte-level, so any text still encodes (unseen words just take more tokens).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from sparrow.model.config import VideoLLMConfig
from sparrow.model.packaged import lm_dir

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|visual|>"]
TINY_VOCAB_SIZE = 1024

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen2-style pre-tokenisation: single digits (counting and timestamps tokenise uniformly), words with
# their leading space, punctuation runs, newlines.
_SPLIT_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"

_WORDS = """
red green blue yellow orange purple pink white black gray grey brown cyan magenta
circle square triangle star diamond hexagon ball box cube disk ring dot line arrow shape shapes object objects
left right up down top bottom middle centre center corner edge side screen frame frames video videos clip clips
moves moving moved appears appear appeared disappears disappear vanishes enters leaves exits bounces rotates
spins grows shrinks stops starts changes color colour size speed fast faster slow slower quickly slowly
first second third fourth fifth last before after then while during until when where which what who how
many much number count counting times once twice one two three four five six seven eight nine ten
zero eleven twelve dozen more less most least same different larger smaller bigger
text word words letter letters sign reads shows written says caption title label
question answer option options choice choices correct wrong true false yes no
beginning end start finish lasts lasts seconds second minute minutes duration long short longer shorter
the a an of to in on at by with from for and or but not is are was were be been it its this that these those
there here each every all any some other another both either neither only also just very
does do did has have had can could will would should may might must
perception temporal order localization ocr long range evidence category
summary summarize describe description explain explanation context paper propose proposes method results
person people man woman child dog cat car bird tree house road street room table door window
cross steadily shown show shows written word needle highlighted box boxes
SUN MOON STAR TREE FISH BIRD RAIN SNOW WIND FIRE ROCK LEAF BOAT CAKE DOOR LAMP BELL KING SHIP GOLD
MILK FROG DUCK WOLF BEAR LION ROSE CORN SALT NEST KITE DRUM HARP OWL FOX CAT DOG SKY SEA MAP
KEY CUP HAT EGG BUS JAM PEN BOX
"""

_SENTENCES = """
Answer with the option's letter from the given choices directly.
The video lasts 00:37.
The video lasts 01:23.
clip from 00:00-00:04: clip from 00:04-00:08: clip from 00:08-00:12: clip from 01:15-01:19:
Frame from 00:00: Frame from 00:02: Frame from 00:13: Frame from 02:45:
Frame 1: Frame 2: Frame 3: Frame 4: Frame 5: Frame 6: Frame 7: Frame 8: Frame 9: Frame 10:
What color is the circle that appears first?
How many squares appear in the video?
Which shape moves from left to right?
In what order do the objects appear?
When does the red triangle disappear?
Which object moves faster, the blue ball or the green square?
What text is written on the sign?
What happens at the end of the video?
A. red
B. blue
C. green
D. yellow
A red circle enters from the left and bounces off the right edge.
A blue square appears in the top left corner at 00:03 and vanishes at 00:07.
The green triangle rotates slowly while the yellow star moves down.
Two circles and three squares are on the screen at the same time.
The word "HELLO" is shown in the middle of the frame for four seconds.
The video shows a white background with black text on each frame.
Read the frames and answer the question about the text.
The paper proposes a method to train video language models with less data.
Summarize the context in one sentence.
The answer is B.
0 1 2 3 4 5 6 7 8 9 10 12 15 20 25 30 45 60 90 100
"""


def _corpus() -> list[str]:
    lines = [ln.strip() for ln in _SENTENCES.strip().splitlines() if ln.strip()]
    words = _WORDS.split()
    # Words alone, with a leading space (mid-sentence form) and capitalised (sentence start), so the
    # common forms all become single tokens.
    lines += [" ".join(words), " ".join(w.capitalize() for w in words)]
    # Role names as the chat template writes them (line start, no leading space).
    lines += ["user", "assistant", "system"]
    # Repeat so merge counts clearly favour corpus words over accidental pairs.
    return lines * 4


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok.to_str()


def build_tiny_tokenizer(out_dir: str | os.PathLike | None = None) -> Any:
    """The tiny tokenizer as a ``PreTrainedTokenizerFast``; saved to ``out_dir`` when given.

    Special tokens: ``<|endoftext|>`` (padding), ``<|im_start|>``, ``<|im_end|>`` (end of turn, the
    EOS for generation) and ``<|visual|>`` (the visual placeholder), ids 0-3.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    # The trainer's multithreading is deterministic for BPE, but keep it single-threaded anyway: the
    # corpus is tiny and this also silences fork warnings in DataLoader workers.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=["<|im_start|>", "<|visual|>"],
        model_max_length=1 << 20,
    )
    tok.chat_template = CHATML_TEMPLATE
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out_dir))
    return tok


def load_tokenizer(source: str | None, lm_path: str | None = None, visual_token: str = "<|visual|>") -> Any:
    """The tokenizer a config names: ``"tiny"``, a local directory, or None (the LM's own directory).

    Makes sure the visual placeholder is a special token (added when missing), that a pad token and a
    chat template exist (ChatML when the checkpoint has none). The LM's own chat template is kept as it
    is, default system prompt included (SmolLM2's adds "You are a helpful AI assistant named SmolLM,
    trained by Hugging Face" when a conversation has no system turn: the model was tuned with it).
    """
    from transformers import AutoTokenizer

    if source == "tiny":
        tok = build_tiny_tokenizer()
    else:
        where = source or lm_path
        if not where:
            raise ValueError("no tokenizer: set 'tokenizer' to 'tiny' or a directory, or give lm.path")
        if not Path(where).is_dir():
            raise ValueError(f"tokenizer directory {where!r} does not exist")
        tok = AutoTokenizer.from_pretrained(where, local_files_only=True)
    if visual_token not in tok.get_vocab():
        tok.add_special_tokens({"extra_special_tokens": [visual_token]}, replace_extra_special_tokens=False)
    if tok.pad_token is None or tok.pad_token == tok.eos_token:
        # Padding that is also the end-of-turn token (SmolLM2 ships it so) makes padding and a real
        # <|im_end|> the same id; use the end-of-text token when the vocabulary has a distinct one.
        spare = "<|endoftext|>"
        tok.pad_token = spare if spare in tok.get_vocab() and spare != tok.eos_token else tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    return tok


def tokenizer_for(cfg: VideoLLMConfig) -> Any:
    """The tokenizer of a model config; a packaged LM is prepared first when its tokenizer is asked for."""
    lm_path = lm_dir(cfg.lm) if cfg.tokenizer in (None, "") else cfg.lm.path
    return load_tokenizer(cfg.tokenizer, lm_path, cfg.visual_token)
