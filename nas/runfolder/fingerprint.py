"""The fingerprint of a run: spec, recipe (with its seed) and data. It is the one meaning of
"the same configuration": a finished run is reused and an interrupted one resumed only when
the fingerprint saved with it equals the one wanted."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from ..recipe import Recipe
    from ..spec import ArchSpec


def data_fingerprint(dataset: Any) -> dict[str, Any]:
    """What identifies the data a run saw: name, source, classes, split sizes, resolution."""
    return {"name": dataset.name, "source": str(dataset.source), "num_classes": dataset.num_classes,
            "resolution": dataset.resolution,
            "sizes": [len(dataset.train), len(dataset.val), len(dataset.test)]}


def run_fingerprint(spec: "ArchSpec", recipe: "Recipe", dataset: Any) -> dict[str, Any]:
    """Spec, recipe (with its seed) and data of a run: reuse a result only on an exact match."""
    return {"spec": spec.to_dict(), "recipe": recipe.to_dict(), "data": data_fingerprint(dataset)}


def fingerprint_difference(saved: dict, wanted: dict) -> Optional[str]:
    """The first part of two fingerprints that differs, in words, or None when they match.
    Parts an older `saved` lacks (checkpoints before the data was recorded) are not compared;
    an empty `saved` (a result from before fingerprints) never matches."""
    if not saved:
        return "made before runs recorded their configuration, so it cannot be matched"
    wanted = {k: v for k, v in wanted.items() if k in saved}
    for part in ("spec", "recipe", "data"):
        before, now = saved.get(part) or {}, wanted.get(part) or {}
        if before != now:
            keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
            return f"{part} differs ({', '.join(keys[:4])})"
    return None


def checkpoint_fingerprint(state: dict) -> dict:
    """The fingerprint a checkpoint records (older ones: their spec and recipe)."""
    return state.get("fingerprint") or {"spec": state["spec"], "recipe": state.get("recipe")}
