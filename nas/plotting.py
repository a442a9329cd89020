"""One way to get matplotlib's pyplot: the file-only Agg backend, chosen once, on first use
(plots are written to files; importing the toolkit never touches matplotlib)."""
from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
