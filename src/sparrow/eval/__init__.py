"""Evaluation of a checkpoint on multiple-choice benchmarks, ApolloBench-style curation, lmms-eval.

The data flow: ``bench`` (rows) -> ``conditions`` (what the model is shown: video, frame, text or swap) ->
``scoring`` (loglik, cloze, cloze_norm, generate; ``answers`` parses replies) -> ``evaluate`` (the
resumable loop) -> ``metrics``; ``runner`` is the whole `sparrow eval` job, ``config`` its settings.
Curation: ``results`` (sparrow eval outputs, lmms-eval sample logs) -> ``curate`` (the recipe and the
`sparrow curate` job) with ``analysis`` (redundancy, rank agreement, scaling consistency).
``lmms_plugin`` and ``lmms_tasks`` run Sparrow checkpoints inside lmms-eval. ``probe`` (with
``probe_features``) fits linear probes of a frozen vision tower's layers on a world's per-frame truth.
"""
