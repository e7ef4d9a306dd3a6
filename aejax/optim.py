"""Optimizers and learning-rate schedules from `config.optimizer`."""

import optax

from aejax.errors import ConfigError
from aejax.registry import lookup


def make_schedule(cfg, total_steps: int) -> optax.Schedule:
    """Linear warmup from 0 over `warmup_steps`, then constant or cosine decay to
    `end_lr_fraction · learning_rate` at `total_steps`."""
    lr = float(cfg.learning_rate)
    if cfg.warmup_steps < 0:
        raise ConfigError(f"config.optimizer.warmup_steps={cfg.warmup_steps} must be >= 0")
    if cfg.warmup_steps >= total_steps:
        raise ConfigError(
            f"config.optimizer.warmup_steps={cfg.warmup_steps} is not shorter than the run "
            f"({total_steps} steps): the learning rate would never reach its peak"
        )
    if cfg.schedule == "constant":
        if cfg.warmup_steps == 0:
            return optax.constant_schedule(lr)
        return optax.join_schedules(
            [optax.linear_schedule(0.0, lr, cfg.warmup_steps), optax.constant_schedule(lr)],
            [cfg.warmup_steps],
        )
    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0 if cfg.warmup_steps else lr,
            peak_value=lr,
            warmup_steps=cfg.warmup_steps,
            decay_steps=max(total_steps, cfg.warmup_steps + 1),
            end_value=lr * float(cfg.end_lr_fraction),
        )
    raise ConfigError(
        f"config.optimizer.schedule={cfg.schedule!r} is not known; valid: constant, cosine"
    )


def _eps(cfg) -> float:
    """`cfg.eps` (1e-8, optax's and PyTorch's Adam default; Keras uses 1e-7)."""
    return float(cfg.eps)


# rmsprop puts ε outside the square root, g / (√v + ε), as Keras and PyTorch do (optax's
# default puts it inside); adadelta is Zeiler (2012), as in Keras and optax: there ε also
# sets the size of the first steps, √ε / √(E[g²] + ε) times the gradient.
OPTIMIZERS = {
    "adam": lambda cfg, lr: optax.adam(lr, eps=_eps(cfg)),
    "adamw": lambda cfg, lr: optax.adamw(lr, eps=_eps(cfg), weight_decay=cfg.weight_decay),
    "sgd": lambda cfg, lr: optax.sgd(lr, momentum=cfg.momentum or None),
    "rmsprop": lambda cfg, lr: optax.rmsprop(
        lr, decay=float(cfg.rho), eps=_eps(cfg), eps_in_sqrt=False
    ),
    "adadelta": lambda cfg, lr: optax.adadelta(lr, rho=float(cfg.rho), eps=_eps(cfg)),
}


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    """The optimizer named `cfg.name` with its schedule, after optional global-norm clipping."""
    build = lookup(OPTIMIZERS, cfg.name, what="optimizer", where="config.optimizer.name")
    if cfg.clip_norm < 0:
        raise ConfigError(f"config.optimizer.clip_norm={cfg.clip_norm} must be >= 0 (0: off)")
    tx = build(cfg, make_schedule(cfg, total_steps))
    if cfg.clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), tx)
    return tx
