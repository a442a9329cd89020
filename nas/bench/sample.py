"""The candidates of a benchmark: a sample of a space stratified over log-MACs, one network
one name, plus the space's hand-designed references. A pure function of the settings, so
every worker and every resumed run plans the same candidates."""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..counting import analytic_count
from ..errors import NasError
from ..search.space import SearchSpace
from ..spec import ArchSpec

DRAWS_PER_CANDIDATE = 50  # random draws tried per wanted candidate before giving up on a band


class BenchError(NasError):
    """A benchmark cannot be planned or read as asked."""


@dataclass(frozen=True)
class BenchCandidate:
    """One network of the benchmark.

    Attributes:
        name: c000, c001, ... for sampled nets (in MACs order), the reference's own name.
        kind: "sampled" or "reference".
        spec: the network, with the data set's classes.
        macs: its analytic MACs.
        params: its parameters.
        stratum: index of its log-MACs band (-1: a reference outside the band).
        seeds: how many training seeds it gets.
    """

    name: str
    kind: str
    spec: ArchSpec
    macs: int
    params: int
    stratum: int
    seeds: int = 1


class RandomChoices:
    """An optuna-free Suggester: each categorical choice drawn uniformly by one RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, _name: str, choices: Sequence[Any]) -> Any:
        """One of `choices`, uniformly."""
        return self.rng.choice(list(choices))


def strata_edges(low: int, high: int, strata: int) -> np.ndarray:
    """`strata` + 1 band edges equally spaced in log-MACs from `low` to `high`."""
    edges = np.exp(np.linspace(math.log(low), math.log(high), strata + 1))
    edges[0], edges[-1] = low, high  # exact ends: exp(log(x)) may round past them
    return edges


def stratum_of(macs: int, edges: np.ndarray) -> int:
    """The band holding `macs` (the top edge belongs to the last band), or -1 outside them."""
    if macs < edges[0] or macs > edges[-1]:
        return -1
    return int(min(np.searchsorted(edges, macs, side="right") - 1, len(edges) - 2))


def sample_strata(space: SearchSpace, num_classes: int, count: int, edges: np.ndarray, seed: int,
                  exclude: set[str]) -> list[list[ArchSpec]]:
    """Distinct random networks of the space, sorted into the bands of `edges`; drawing stops
    once every band holds its share of `count` or after DRAWS_PER_CANDIDATE draws a candidate."""
    rng = RandomChoices(random.Random(seed))
    bands: list[list[ArchSpec]] = [[] for _ in range(len(edges) - 1)]
    share = math.ceil(count / len(bands))
    seen = set(exclude)
    for _ in range(DRAWS_PER_CANDIDATE * count):
        spec = space.to_spec(space.suggest(rng), num_classes=num_classes)
        key = spec.canonical_string()
        if key in seen:
            continue
        seen.add(key)
        band = stratum_of(analytic_count(spec).macs, edges)
        if band >= 0:
            bands[band].append(spec)
        if all(len(b) >= share for b in bands):
            break
    return bands


def round_robin(bands: list[list[ArchSpec]], count: int) -> list[tuple[int, ArchSpec]]:
    """Up to `count` (band, spec) pairs taken one band at a time, so thin bands are not
    crowded out by the middle of the space."""
    picked: list[tuple[int, ArchSpec]] = []
    depth = 0
    while len(picked) < count and any(depth < len(b) for b in bands):
        for i, band in enumerate(bands):
            if depth < len(band) and len(picked) < count:
                picked.append((i, band[depth]))
        depth += 1
    return picked


def plan_candidates(space: SearchSpace, num_classes: int, count: int, band: tuple[int, int],
                    strata: int, seeds: int, seed_candidates: int, seed: int) -> list[BenchCandidate]:
    """References first, then `count` sampled networks in MACs order; `seed_candidates` of
    them, evenly spread over MACs, get `seeds` training seeds and the rest one."""
    edges = strata_edges(*band, strata)
    refs = [space.to_spec(params, num_classes=num_classes, name=name) for name, params in space.baseline_params()]
    ref_keys = {r.canonical_string() for r in refs}
    picked = round_robin(sample_strata(space, num_classes, count, edges, seed, ref_keys), count)
    if len(picked) < count:
        raise BenchError(f"found only {len(picked)} distinct networks of space {space.name} within "
                         f"{band[0]:,}-{band[1]:,} MACs; widen --macs-range or ask for fewer --candidates")
    picked.sort(key=lambda p: analytic_count(p[1]).macs)
    nets = [(r.name, "reference", r) for r in refs]
    nets += [(f"c{i:03d}", "sampled", s.replace(name=f"c{i:03d}")) for i, (_b, s) in enumerate(picked)]
    multi = set(np.linspace(0, len(nets) - 1, min(seed_candidates, len(nets))).round().astype(int).tolist())
    out = []
    for i, (name, kind, spec) in enumerate(nets):
        c = analytic_count(spec)
        out.append(BenchCandidate(name, kind, spec, c.macs, c.params, stratum_of(c.macs, edges),
                                  seeds if i in multi else 1))
    return out


def planned_runs(candidates: Sequence[BenchCandidate]) -> list[tuple[int, int]]:
    """(candidate index, seed index) of every run: every candidate's first seed before any
    second one, so an interrupted benchmark covers all candidates first."""
    most = max(c.seeds for c in candidates)
    return [(i, k) for k in range(most) for i, c in enumerate(candidates) if k < c.seeds]
