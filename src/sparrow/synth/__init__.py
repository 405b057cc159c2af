"""Sparrow's text-to-video synthesis: long-context text records become pseudo-video samples.

A record's ``context`` is cut into consecutive frames of at most ``units_per_frame`` units (words, or
tokens of a local tokenizer), preferring paragraph and sentence ends; every frame's text is an exact
slice of the original. Every frame is laid out and measured before it is drawn: text that would not fit
goes to the next frame (so dense text makes more frames), and all of the context appears, in order,
with nothing clipped. The frames become one ``frames`` media item; the question and answer stay text.

- ``errors``: SynthError
- ``config``: SynthConfig, parse_fields
- ``presets``: raw records -> (context, question, answer)
- ``units``: word / token units, the text tokens a text costs
- ``segment``: boundary scores, fill_frames, plan_frames
- ``inputs``: streaming readers (JSON array, JSONL, Parquet) and field access
- ``tokenizers``: the local tokenizer loader
- ``record``: one record -> its frames and sample
- ``job``: the stage on ``sparrow.jobs`` (resumable, identical output for any worker count) and
  ``synthesize``, the library entry point
"""

from sparrow.synth.config import FIELDS, UNITS, SynthConfig, parse_fields
from sparrow.synth.errors import SynthError
from sparrow.synth.inputs import (
    RawRecord,
    input_kind,
    iter_json_array,
    iter_parquet,
    iter_records,
    parquet_rows,
)
from sparrow.synth.job import SynthStage, synthesize
from sparrow.synth.outputs import SynthSummary
from sparrow.synth.record import frame_dir, safe_dir_name
from sparrow.synth.segment import Frame, boundary_scores, fill_frames, plan_frames
from sparrow.synth.tokenizers import load_tokenizer
from sparrow.synth.units import count_text_tokens, token_units, word_units

__all__ = [
    "FIELDS",
    "UNITS",
    "Frame",
    "RawRecord",
    "SynthConfig",
    "SynthError",
    "SynthStage",
    "SynthSummary",
    "boundary_scores",
    "count_text_tokens",
    "fill_frames",
    "frame_dir",
    "input_kind",
    "iter_json_array",
    "iter_parquet",
    "iter_records",
    "load_tokenizer",
    "parquet_rows",
    "parse_fields",
    "plan_frames",
    "safe_dir_name",
    "synthesize",
    "token_units",
    "word_units",
]
