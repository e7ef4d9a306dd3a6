"""PNG figures (matplotlib, Agg backend: no display needed)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402


def _as_image(x: np.ndarray) -> np.ndarray:
    """[H, W, 1] -> [H, W] for grayscale; [H, W, 3] stays; values clipped to [0, 1]."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return x[..., 0] if x.shape[-1] == 1 else x


def save_image_rows(
    path: str, rows: dict[str, np.ndarray], title: str, xlabel: str | None = None
) -> None:
    """Saves a grid with one labelled row per entry of `rows`, each [N, H, W, C] in [0, 1].

    Used for test images beside their reconstructions, corrupted inputs, samples and
    interpolations. `xlabel` names what changes along a row (below the last row).
    """
    names = list(rows)
    n = min(len(v) for v in rows.values())
    fig, axes = plt.subplots(
        len(names), n, figsize=(n * 1.0, len(names) * 1.1 + 0.5), squeeze=False
    )
    for r, name in enumerate(names):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(_as_image(rows[name][c]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    if xlabel:
        fig.supxlabel(xlabel)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def is_image_shape(shape) -> bool:
    """True for [H, W, C] with C in {1, 3}: what `save_image_rows` can draw."""
    return len(shape) == 3 and shape[-1] in (1, 3)


def label_colors(labels: np.ndarray):
    """One colour block per integer label from min to max, for a scatter's colour bar.

    Returns (cmap, norm, ticks): a listed colormap of as many colours as labels, a
    `BoundaryNorm` whose blocks run from k − 0.5 to k + 0.5, and the labels as ticks, so
    that each tick sits at the centre of its block (a continuous norm puts the ticks of
    ten labels on the edges between blocks).
    """
    lo, hi = int(np.min(labels)), int(np.max(labels))
    n = hi - lo + 1
    name = "tab10" if n <= 10 else "tab20" if n <= 20 else "viridis"
    cmap = (
        plt.get_cmap(name).resampled(n)
        if name == "viridis"
        else ListedColormap(plt.get_cmap(name).colors[:n])
    )
    norm = BoundaryNorm(np.arange(lo - 0.5, hi + 1.0), n)
    return cmap, norm, np.arange(lo, hi + 1)


def scatter_figure(xy: np.ndarray, labels: np.ndarray | None, title: str, xlabel: str, ylabel: str):
    """The figure of `save_scatter`: points xy [N, 2], coloured by integer label when given,
    with a colour bar of one block per label, its tick at the block's centre."""
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.6)
    else:
        cmap, norm, ticks = label_colors(labels)
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=cmap, norm=norm, s=3, alpha=0.7)
        fig.colorbar(points, ax=ax, label="label", ticks=ticks)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return fig


def save_scatter(
    path: str, xy: np.ndarray, labels: np.ndarray | None, title: str, xlabel: str, ylabel: str
) -> None:
    """Saves a 2-D scatter of points xy [N, 2], coloured by integer label when given."""
    fig = scatter_figure(xy, labels, title, xlabel, ylabel)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_image_grid(
    path: str,
    images: np.ndarray,
    title: str,
    xlabel: str,
    ylabel: str,
    xticks: np.ndarray,
    yticks: np.ndarray,
) -> None:
    """Saves images [R, C, H, W, ch] in [0, 1] tiled into one picture, row r at the top
    (as in Keras' digit manifold), with the value of each column and row on its axes:
    `xticks` [C] under the columns, `yticks` [R] beside the rows."""
    r, c, h, w = images.shape[:4]
    tiles = np.stack([_as_image(images[i, j]) for i in range(r) for j in range(c)])
    tiles = tiles.reshape(r, c, h, w, *tiles.shape[3:])
    canvas = tiles.swapaxes(1, 2).reshape(r * h, c * w, *tiles.shape[4:])
    fig, ax = plt.subplots(figsize=(0.5 * c + 1.5, 0.5 * r + 1.2))
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0)
    ax.set_xticks(np.arange(c) * w + (w - 1) / 2, [f"{v:.2g}" for v in xticks], rotation=90)
    ax.set_yticks(np.arange(r) * h + (h - 1) / 2, [f"{v:.2g}" for v in yticks])
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_lines(path: str, series: dict[str, tuple], title: str, xlabel: str, ylabel: str) -> None:
    """Saves one line with markers per entry of `series`: name -> (x values, y values)."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_grouped_bars(
    path: str,
    groups: list[str],
    series: dict[str, list[float]],
    title: str,
    xlabel: str,
    ylabel: str,
    ylim: tuple[float, float] | None = None,
) -> None:
    """Saves grouped bars: one group per entry of `groups`, one bar per entry of `series`
    (name -> a value per group), side by side and coloured by series."""
    n = len(series)
    width = 0.8 / max(n, 1)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6.5, 0.35 * n * len(groups) + 4), 4.5))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, groups, rotation=30 if max(map(len, groups), default=0) > 4 else 0)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # off the bars
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
