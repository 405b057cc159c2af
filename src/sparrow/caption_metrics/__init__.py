"""Caption metrics without Java or downloads: BLEU-4, ROUGE-L, CIDEr-D, distinct-n, self-BLEU, Vendi,
caption matching and time offsets, the world's slot accuracy, paired bootstrap intervals, and the
trinity report that gathers them."""

from sparrow.caption_metrics.bleu import corpus_bleu, self_bleu, sentence_bleu
from sparrow.caption_metrics.bootstrap import Interval, cider_difference, paired_bootstrap
from sparrow.caption_metrics.cider import CiderD, cider_d
from sparrow.caption_metrics.diversity import distinct, vendi, vocabulary
from sparrow.caption_metrics.matching import Match, match_lines
from sparrow.caption_metrics.rouge import rouge_l
from sparrow.caption_metrics.slots import event_slots, slot_accuracy
from sparrow.caption_metrics.trinity import TrinityConfig, TrinityReport, trinity

__all__ = [
    "CiderD",
    "Interval",
    "Match",
    "TrinityConfig",
    "TrinityReport",
    "cider_d",
    "cider_difference",
    "corpus_bleu",
    "distinct",
    "event_slots",
    "match_lines",
    "paired_bootstrap",
    "rouge_l",
    "self_bleu",
    "sentence_bleu",
    "slot_accuracy",
    "trinity",
    "vendi",
    "vocabulary",
]
