"""Collections larger than the generated test split, for latency benchmarks (Tables 3 and 4).

Rendering and running the detector on a million images takes days on two CPU cores, so large
collections are grown at the *feature* level: synthetic image ``n`` takes region slot ``r`` from
real image ``h(n, r)`` (a fixed integer hash into the real images), together with that region's
geometry and mask, and its global feature from real image ``h(n, R)``. The first ``n_real`` ids
are the real images themselves. Every synthetic image is a plausible set of detector outputs that
the models encode at the real cost per image, and any id can be materialised again on demand
(the cross-encoder needs the features of whatever the first stage shortlists).

Example:
    >>> grown = RecombinedFeatures(store.get(real_ids), seed=0)
    >>> grown.get(np.array([0, 5_000_000]))["regions"].shape     # (B, R, D)
"""
from __future__ import annotations

import numpy as np
import torch

_MULT = np.uint64(0x9E3779B97F4A7C15)


def _hash(n: np.ndarray, salt: int, modulo: int, seed: int) -> np.ndarray:
    """A splitmix64-style integer hash of (n, salt, seed), reduced modulo ``modulo``."""
    with np.errstate(over="ignore"):
        x = n.astype(np.uint64) * _MULT + np.uint64((salt * 0x632BE59BD9B4E019 + seed * 0x85EBCA77C2B2AE63 + 1) % 2**64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(modulo)).astype(np.int64)


class RecombinedFeatures:
    """Features of a collection of any size grown from real images (see the module docstring).

    Args:
        real: ``FeatureStore.get`` output for the real images: regions (N, R, D), geometry (N, R, 6),
            mask (N, R), global (N, D).
        seed: changes which real regions each synthetic image borrows.
    """

    def __init__(self, real: dict[str, torch.Tensor], seed: int = 0):
        self.real = {k: v.numpy() for k, v in real.items()}
        self.n_real, self.max_regions = self.real["mask"].shape
        self.seed = seed

    def get(self, ids: np.ndarray) -> dict[str, torch.Tensor]:
        ids = np.asarray(ids, dtype=np.int64)
        r = np.arange(self.max_regions)
        src = np.stack([_hash(ids, s, self.n_real, self.seed) for s in range(self.max_regions)], axis=1)  # (B, R)
        src = np.where(ids[:, None] < self.n_real, ids[:, None], src)  # real ids stay themselves
        glob = np.where(ids < self.n_real, ids, _hash(ids, self.max_regions, self.n_real, self.seed))  # (B,)
        mask = self.real["mask"][src, r]  # (B, R); an all-padding draw still has its [CLS] and global tokens
        return {"regions": torch.from_numpy(self.real["regions"][src, r]),
                "geometry": torch.from_numpy(self.real["geometry"][src, r]),
                "mask": torch.from_numpy(mask),
                "global": torch.from_numpy(self.real["global"][glob])}


def mix_embeddings(encoded: np.ndarray, n: int, seed: int = 0, chunk: int = 100_000) -> tuple[np.ndarray, np.ndarray]:
    """Grow (m, H) normalised image embeddings to n rows; returns (embeddings (n, H), parent (n,)).

    Rows past m are ``normalise(l * e_a + (1 - l) * e_b)`` for random encoded images a, b and l ~ U(0.5, 1):
    points in the span of real embeddings, nearest to their first parent ``a``, which also lends them its
    features when a cross-encoder scores them. Used where encoding every image would dominate a latency
    benchmark (a million images through the image tower take ~40 min on two AVX2 cores).
    """
    m, h = encoded.shape
    if n <= m:
        return encoded[:n], np.arange(n)
    rng = np.random.default_rng([seed, 1])
    a = rng.integers(m, size=n - m)
    b = rng.integers(m, size=n - m)
    lam = rng.uniform(0.5, 1.0, size=(n - m, 1)).astype(np.float32)
    out = np.empty((n, h), dtype=np.float32)
    out[:m] = encoded
    for s in range(0, n - m, chunk):
        mixed = lam[s:s + chunk] * encoded[a[s:s + chunk]] + (1 - lam[s:s + chunk]) * encoded[b[s:s + chunk]]
        out[m + s:m + s + len(mixed)] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True).clip(1e-12)
    return out, np.concatenate([np.arange(m), a])
