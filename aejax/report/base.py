"""What every report section shares: its result type, options and table helpers."""

import dataclasses

import jax
import numpy as np

from aejax import plots
from aejax.config import check_number
from aejax.evaluate import TrainedModel, map_batches, reconstruction_metrics


@dataclasses.dataclass
class Section:
    """One part of the report.

    Attributes:
      title: the Markdown heading.
      results: JSON-ready numbers.
      lines: Markdown lines (tables, notes) under the heading.
      figures: (caption, file name in the report folder) of each PNG.
    """

    title: str
    results: dict = dataclasses.field(default_factory=dict)
    lines: list[str] = dataclasses.field(default_factory=list)
    figures: list[tuple[str, str]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Options:
    """Settings of the report's computations (seeded, so a report is reproducible).

    Attributes:
      out_dir: where figures are written.
      seed: seeds every random draw (noise, masks, pairs, t-SNE, samples).
      iwae_k: importance samples of the IWAE bound (VAEs).
      tsne_points: test codes embedded by t-SNE (a random subset; t-SNE is quadratic).
      probe_train: training examples the linear probes are fitted on (0: all).
      inpaint_steps: reconstruct-and-replace iterations.
      fpr: the false-positive rate on validation normals that sets the anomaly threshold.
    """

    out_dir: str
    seed: int = 0
    iwae_k: int = 1000
    tsne_points: int = 2000
    probe_train: int = 0
    inpaint_steps: int = 50
    fpr: float = 0.05

    def __post_init__(self):
        """Refuses a bad value (ConfigError naming it) before any section runs."""
        for name, low in (("seed", 0), ("iwae_k", 1), ("tsne_points", 2), ("probe_train", 0)):
            check_number(getattr(self, name), f"report option {name}", integer=True, low=low)
        check_number(self.inpaint_steps, "report option inpaint_steps", integer=True, low=0)
        check_number(self.fpr, "report option fpr", low=0, high=1, low_open=True, high_open=True)


def _table(header: list[str], rows: list[list]) -> list[str]:
    """A Markdown table; floats get 4 significant digits."""
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "\\|")
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(fmt(v) for v in row) + " |" for row in rows),
    ]


def _records(header: list[str], rows: list[list]) -> list[dict]:
    """Table rows as JSON records."""
    return [dict(zip(header, row, strict=True)) for row in rows]


def _is_image(m: TrainedModel) -> bool:
    return plots.is_image_shape(m.dataset.example_shape)


def _code_size(m: TrainedModel) -> int:
    return int(np.prod(m.code_shape))


_pair_metrics = jax.jit(lambda b: reconstruction_metrics(b[:, 0], b[:, 1]))


def _mean_metrics(x: np.ndarray, x_hat: np.ndarray, image: bool) -> dict[str, float]:
    """Test means of the reconstruction metrics (BCE and PSNR only for [0, 1] images)."""
    per_example = map_batches(_pair_metrics, np.stack([x, x_hat], 1), 1000)
    keep = ("mse_per_pixel", "sq_err_per_image") + (("bce_per_pixel", "psnr") if image else ())
    return {k: float(np.mean(per_example[k])) for k in keep}
