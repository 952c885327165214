"""Which paper vectors make the best ``/papers similar`` and ``/papers foryou``? Measured, in one run.

The quality set is a real arXiv listing (``tests/fixtures/arxiv_listing_2026-01-24.json.gz``: the
501 cs/stat/eess papers announced that day, titles and abstracts as arXiv gave them). Relevance is
judged by a stated rule, not by any of the candidates: two papers are related when they have the
same primary category **and** share a method keyword from ``METHODS`` (whole words, folded).

- ``similar``: every paper with at least one related paper is a query; the other 500 are ranked.
- ``foryou``: a "taste" is a (primary category, method keyword) pair with enough papers; the papers
  are split in two halves (history, new) with a fixed seed; the user saved up to 5 taste papers
  from the history; a linear model (logistic regression on the saved papers against the rest of the
  history, as arxiv-sanity-lite trains an SVM per tag) ranks the new half; related = taste papers
  in the new half.

Scores: nDCG@10 (binary gains) and precision@5, averaged over queries (users). Candidates: random,
keyword overlap (shared distinct words; for ``foryou`` the best overlap with any saved paper),
tf-idf (exact sparse cosine, sublinear tf, fitted on the set), wordllama's 256-d model as paperbot
stores it (4-bit), and tf-idf + wordllama averaged.

    .venv/bin/python bench/similar_quality.py
"""

from __future__ import annotations

import gzip
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.chat.vectors import Embedder, train_taste, unit
from bot.query.matcher import words

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "arxiv_listing_2026-01-24.json.gz"
METHODS = (
    "diffusion",
    "transformer",
    "reinforcement learning",
    "large language model",
    "llm",
    "vision language",
    "graph neural",
    "contrastive",
    "self supervised",
    "federated",
    "distillation",
    "retrieval",
    "agent",
    "segmentation",
    "detection",
    "point cloud",
    "gaussian splatting",
    "radiance field",
    "quantization",
    "pruning",
    "mixture of expert",
    "fine tuning",
    "lora",
    "prompt",
    "reasoning",
    "adversarial",
    "variational",
    "bayesian",
    "kernel",
    "convolutional",
    "recurrent",
    "attention",
    "sparse",
    "privacy",
    "uncertainty",
    "multimodal",
    "speech",
    "tracking",
    "simulation",
    "control",
    "planning",
    "causal",
    "clustering",
    "benchmark",
    "robot",
    "channel estimation",
    "beamforming",
    "optimization",
    "language model",
)
Matrix = np.ndarray


def load() -> list[dict[str, object]]:
    with gzip.open(FIXTURE, "rt", encoding="utf-8") as file:
        papers: list[dict[str, object]] = json.load(file)
    return papers


def methods_of(text: str) -> frozenset[str]:
    tokens = " " + " ".join(words(text)) + " "
    return frozenset(m for m in METHODS if " " + " ".join(words(m)) + " " in tokens)


def ndcg_at_10(ranked: list[int], relevant: set[int]) -> float:
    gain = sum(1 / math.log2(rank + 2) for rank, i in enumerate(ranked[:10]) if i in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return gain / ideal


def precision_at_5(ranked: list[int], relevant: set[int]) -> float:
    return sum(1 for i in ranked[:5] if i in relevant) / 5


def tfidf_matrix(texts: list[str]) -> Matrix:
    docs = [Counter(words(t)) for t in texts]
    vocabulary = {w: i for i, w in enumerate(sorted({w for d in docs for w in d}))}
    df = Counter(w for d in docs for w in d)
    matrix = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
    for row, doc in enumerate(docs):
        for word, tf in doc.items():
            matrix[row, vocabulary[word]] = (1 + math.log(tf)) * math.log((1 + len(docs)) / (1 + df[word]))
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True).clip(1e-9)


def overlap_matrix(texts: list[str]) -> Matrix:
    sets = [set(words(t)) for t in texts]
    return np.array([[len(a & b) for b in sets] for a in sets], dtype=np.float32)


def similar_scores(name: str, scores: Matrix, related: list[set[int]]) -> tuple[str, float, float, int]:
    ndcg, p5, queries = 0.0, 0.0, 0
    for i, relevant in enumerate(related):
        if not relevant:
            continue
        row = scores[i].copy()
        row[i] = -np.inf
        ranked = [int(j) for j in np.argsort(-row, kind="stable")[:10]]
        ndcg += ndcg_at_10(ranked, relevant)
        p5 += precision_at_5(ranked, relevant)
        queries += 1
    return name, ndcg / queries, p5 / queries, queries


def foryou_scores(
    name: str,
    rank_new: Callable[[list[int], list[int], list[int]], list[int]],
    tastes: list[tuple[list[int], list[int], set[int]]],
    new: list[int],
) -> tuple[str, float, float, int]:
    ndcg = p5 = 0.0
    for saved, others, relevant in tastes:
        ranked = rank_new(saved, others, new)
        ndcg += ndcg_at_10(ranked, relevant)
        p5 += precision_at_5(ranked, relevant)
    return name, ndcg / len(tastes), p5 / len(tastes), len(tastes)


def main() -> None:
    papers = load()
    texts = [f"{p['title']}. {p['abstract']}" for p in papers]
    cats = [str(p["primary_category"]) for p in papers]
    methods = [methods_of(t) for t in texts]
    related = [
        {j for j in range(len(papers)) if j != i and cats[j] == cats[i] and methods[i] & methods[j]} for i in range(len(papers))
    ]
    rng = random.Random(7)
    order = list(range(len(papers)))
    rng.shuffle(order)
    history, new = set(order[: len(order) // 2]), set(order[len(order) // 2 :])
    tastes: list[tuple[list[int], list[int], set[int]]] = []
    for cat, method in sorted({(c, m) for c, ms in zip(cats, methods, strict=True) for m in ms}):
        members = {i for i in range(len(papers)) if cats[i] == cat and method in methods[i]}
        past, future = sorted(members & history), members & new
        if len(past) >= 4 and len(future) >= 3:
            saved = rng.sample(past, min(5, len(past)))
            tastes.append((saved, sorted(history - set(saved)), future))

    representations: dict[str, Matrix] = {"tf-idf": tfidf_matrix(texts), "wordllama 256-d": unit(Embedder().embed(texts))}

    rows: list[tuple[str, str, float, float, int]] = []
    random_scores = np.random.default_rng(3).random((len(papers), len(papers))).astype(np.float32)
    overlap = overlap_matrix(texts)
    cosines = {name: m @ m.T for name, m in representations.items()}
    cosines["tf-idf + wordllama"] = (cosines["tf-idf"] + cosines["wordllama 256-d"]) / 2
    for name, scores in {"random": random_scores, "keyword overlap": overlap, **cosines}.items():
        rows.append(("similar", *similar_scores(name, scores, related)))

    def by_scores(scores: Matrix) -> Callable[[list[int], list[int], list[int]], list[int]]:
        def rank(saved: list[int], others: list[int], candidates: list[int]) -> list[int]:
            best = scores[np.ix_(candidates, saved)].max(axis=1)
            return [candidates[k] for k in np.argsort(-best, kind="stable")]

        return rank

    def by_model(matrix: Matrix) -> Callable[[list[int], list[int], list[int]], list[int]]:
        def rank(saved: list[int], others: list[int], candidates: list[int]) -> list[int]:
            weights = train_taste(matrix[saved], matrix[others])
            return [candidates[k] for k in np.argsort(-(matrix[candidates] @ weights), kind="stable")]

        return rank

    rows.append(("foryou", *foryou_scores("random", by_scores(random_scores), tastes, sorted(new))))
    rows.append(("foryou", *foryou_scores("keyword overlap (best saved)", by_scores(overlap), tastes, sorted(new))))
    for name, matrix in representations.items():
        rows.append(("foryou", *foryou_scores(f"{name}, linear model", by_model(matrix), tastes, sorted(new))))
    both = np.hstack([representations["tf-idf"], representations["wordllama 256-d"]]) / math.sqrt(2)
    rows.append(("foryou", *foryou_scores("tf-idf + wordllama, linear model", by_model(both), tastes, sorted(new))))

    print(f"quality set: {len(papers)} papers, {sum(1 for r in related if r)} with related papers, {len(tastes)} tastes")
    print(f"{'task':8} {'representation':38} {'nDCG@10':>8} {'P@5':>6} {'n':>5}")
    for task, name, ndcg, p5, n in rows:
        print(f"{task:8} {name:38} {ndcg:8.3f} {p5:6.3f} {n:5}")


if __name__ == "__main__":
    main()
