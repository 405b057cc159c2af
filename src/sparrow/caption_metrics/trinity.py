"""VidDF's trinity for a caption set: quantity, diversity and (against a reference) quality, plus slot
accuracy where the reference is the world's ground truth (every event names the world's vocabulary).

Quality is measured per video on paragraphs (the video's captions in time order, joined), the way
dense captions are compared as a whole: BLEU-4 over the corpus, ROUGE-L and CIDEr-D as means over the
reference's videos (a video with no captions scores 0). The time offset is the mean start-time gap of
captions matched one to one by wording (``matching``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from sparrow.caption_metrics.bleu import corpus_bleu, self_bleu
from sparrow.caption_metrics.cider import cider_d
from sparrow.caption_metrics.diversity import distinct, vendi, vocabulary
from sparrow.caption_metrics.matching import MIN_F1, match_lines
from sparrow.caption_metrics.rouge import rouge_l
from sparrow.caption_metrics.slots import is_world_truth, slot_accuracy
from sparrow.caption_metrics.text import words
from sparrow.captions import Transcript
from sparrow.hf_logging import quiet_hf
from sparrow.io import atomic_write_text


@dataclass(frozen=True)
class TrinityConfig:
    """What the report measures; each field's comment is also its ``sparrow trinity`` option's help."""

    self_bleu_sample: int = 200  # Captions in the self-BLEU sample (quadratic cost).
    vendi_sample: int = 1000  # captions embedded for the Vendi score
    vendi: bool = True  # Vendi score (loads the sentence encoder; off: no model load).
    # Local sentence-transformers folder for the Vendi score (default: the packaged MiniLM).
    encoder: str | None = None
    min_f1: float = MIN_F1  # wording similarity that matches a caption to a reference caption
    seed: int = 0  # Seed of the samples and the bootstrap.


@dataclass
class TrinityReport:
    quantity: dict[str, float | int]
    diversity: dict[str, float | int | None]
    quality: dict[str, float | int] | None = None
    slots: dict[str, float | int] | None = None
    per_video_cider: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")


def quantity(captions: dict[str, Transcript]) -> dict[str, float | int]:
    texts = [x.text for t in captions.values() for x in t.lines]
    n_words = sum(len(words(t)) for t in texts)
    return {
        "videos": len(captions),
        "captions": len(texts),
        "words": n_words,
        "words_per_caption": n_words / len(texts) if texts else 0.0,
        "captions_per_video": len(texts) / len(captions) if captions else 0.0,
    }


def diversity(captions: dict[str, Transcript], cfg: TrinityConfig, encoder: Any = None) -> dict[str, Any]:
    texts = [x.text for t in captions.values() for x in t.lines]
    out: dict[str, Any] = {
        "vocabulary": vocabulary(texts),
        "distinct_1": distinct(texts, 1),
        "distinct_2": distinct(texts, 2),
        "self_bleu": self_bleu(texts, cfg.self_bleu_sample, cfg.seed),
        "vendi": None,
    }
    if cfg.vendi:
        if encoder is None:
            from sparrow.diversity import load_encoder

            with quiet_hf():  # the library never prints, not even a loading bar
                encoder = load_encoder(cfg.encoder)
        out["vendi"] = vendi(texts, encoder, cfg.vendi_sample, cfg.seed)
    return out


def quality(
    captions: dict[str, Transcript], reference: dict[str, Transcript], min_f1: float = MIN_F1
) -> tuple[dict[str, float | int], dict[str, float]]:
    """Quality numbers and the per-video CIDEr-D (for paired comparisons)."""
    vids = list(reference)
    empty = Transcript("", ())
    cand = {v: captions.get(v, empty).paragraph() for v in vids}
    refs = {v: [reference[v].paragraph()] for v in vids}
    cider = cider_d(cand, refs)
    offsets = []
    matched = total_refs = 0
    for v in vids:
        ms = match_lines(captions.get(v, empty).lines, reference[v].lines, min_f1)
        offsets += [m.offset for m in ms]
        matched += len(ms)
        total_refs += len(reference[v].lines)
    n = max(len(vids), 1)
    q = {
        "videos": len(vids),
        "covered_videos": sum(v in captions for v in vids),
        "bleu_4": corpus_bleu([cand[v] for v in vids], [refs[v] for v in vids]) if vids else 0.0,
        "rouge_l": sum(rouge_l(cand[v], refs[v]) for v in vids) / n,
        "cider_d": sum(cider.values()) / n,
        "matched_share": matched / total_refs if total_refs else 0.0,
        "time_offset": sum(offsets) / len(offsets) if offsets else 0.0,
    }
    return q, cider


def trinity(
    captions: dict[str, Transcript],
    reference: dict[str, Transcript] | None = None,
    cfg: TrinityConfig | None = None,
    encoder: Any = None,
) -> TrinityReport:
    """The whole report; ``encoder`` may be passed to reuse a loaded sentence encoder."""
    cfg = cfg or TrinityConfig()
    report = TrinityReport(quantity(captions), diversity(captions, cfg, encoder))
    if reference is not None:
        report.quality, report.per_video_cider = quality(captions, reference, cfg.min_f1)
        if is_world_truth(reference):  # slots are the world's; elsewhere they would mean nothing
            report.slots = slot_accuracy(captions, reference, cfg.min_f1)
    return report
