"""Evaluation: multiple-choice scoring, ApolloBench-style curation, the lmms-eval plugin."""
