"""ROUGE-L: the longest-common-subsequence F-measure with beta = 1.2, as COCO's caption scorer computes
it (precision and recall each taken at their best reference)."""

from __future__ import annotations

from sparrow.caption_metrics.text import words

BETA = 1.2


def lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, references: list[str]) -> float:
    """ROUGE-L F of one candidate against its references (0..1)."""
    cand = words(candidate)
    if not cand or not references:
        return 0.0
    precision = recall = 0.0
    for ref in references:
        r = words(ref)
        if not r:
            continue
        n = lcs(cand, r)
        precision, recall = max(precision, n / len(cand)), max(recall, n / len(r))
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + BETA**2) * precision * recall / (recall + BETA**2 * precision)
