"""py3langid's classification of many texts at once, vectorised over the texts with numpy.

``LanguageIdentifier.classify`` walks its byte-n-gram automaton one byte at a time in a Python
loop: about 1.5 µs a byte, 0.4 ms for the 300 characters ``language_mismatch`` reads, which on
answers that do not repeat was most of the evaluators' time. Here every text of a batch takes
its step through the automaton together (one numpy gather a byte position), so the loop runs
once per position of the longest text instead of once per byte of every text; the counts and
the naive-Bayes scores then follow as in ``classify``. Results equal ``classify``'s up to the
order of float32 sums (the tests compare both).

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BatchClassifier:
    """``classify`` for a list of texts, on a py3langid ``LanguageIdentifier`` (norm_probs)."""

    def __init__(self, identifier: Any) -> None:
        import numpy as np

        self.identifier = identifier
        nm = identifier.tk_nextmove
        self.nextmove = np.frombuffer(nm, dtype=np.dtype(nm.typecode))  # a view: 9.8M states
        self.rowbase = np.asarray(identifier._rowbase, dtype=np.int64)
        self.output = np.asarray(identifier.tk_output, dtype=np.int64)
        self.n_features = int(self.output.max()) + 1
        # The model's float16 weights of the chosen languages, widened once (16 MB) rather
        # than on every batch.
        self.table = np.asarray(identifier.nb_ptc, dtype=np.float32)

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        import numpy as np

        ident = self.identifier
        if not texts:
            return []
        encoded = [ident._encode(t) for t in texts]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        # Longest first: the texts still being walked at a position are then a prefix.
        order = np.argsort(-lengths, kind="stable")
        lengths_sorted = lengths[order]
        width = int(lengths_sorted[0])
        grid = np.zeros((len(encoded), max(width, 1)), dtype=np.int64)
        for row, i in enumerate(order.tolist()):
            b = encoded[i]
            if b:
                grid[row, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        alive_at = np.searchsorted(-lengths_sorted, -np.arange(width), side="right")
        state = np.zeros(len(encoded), dtype=np.int64)
        hit_rows: list[Any] = []
        hit_features: list[Any] = []
        nextmove, rowbase, output = self.nextmove, self.rowbase, self.output
        for pos in range(width):
            k = int(alive_at[pos])
            s = nextmove[rowbase[state[:k]] + grid[:k, pos]]
            state[:k] = s
            f = output[s]
            hit = np.flatnonzero(f >= 0)
            if hit.size:
                hit_rows.append(hit)
                hit_features.append(f[hit])
        n_classes = len(ident.nb_classes)
        scores = np.zeros((len(encoded), n_classes), dtype=np.float32)
        if hit_rows:
            rows = np.concatenate(hit_rows)
            features = np.concatenate(hit_features)
            n_features = self.n_features
            codes, counts = np.unique(rows * n_features + features, return_counts=True)
            feature_rows = codes // n_features
            weighted = self.table[codes % n_features]
            weighted *= np.log1p(counts.astype(np.float32))[:, None]
            starts = np.flatnonzero(np.r_[True, feature_rows[1:] != feature_rows[:-1]])
            sums = np.add.reduceat(weighted, starts, axis=0)
            with_features = feature_rows[starts]
            scores[with_features] = sums + ident.nb_pc
        # As classify: no features scores 0.0 (uniform, so it abstains); a temperature of
        # sqrt(bytes) before the softmax; aliased labels folded into their first column.
        temperature = 1.0 / np.sqrt(np.maximum(lengths_sorted, 1))
        scores *= temperature.astype(np.float32)[:, None]
        np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        for a, b in ident._alias_pairs:
            scores[:, a] += scores[:, b]
            scores[:, b] = 0.0
        best = scores.argmax(axis=1)
        confidence = scores[np.arange(len(encoded)), best]
        results: list[tuple[str, float]] = [("", 0.0)] * len(encoded)
        classes = ident.nb_classes
        for row, i in enumerate(order.tolist()):
            results[i] = (str(classes[int(best[row])]), float(confidence[row]))
        return results
