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


def finish(fig: Any, ax: Any, path: Any, legend: bool = True) -> None:
    """The common last strokes of a plot: a light grid, the legend, a tight layout; then the
    figure is written (atomically, `nas.atomic.save_figure`) and closed."""
    from .atomic import save_figure

    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    pyplot().close(fig)
