"""Model families (flax.linen modules only) and the MODELS registry.

A builder takes the `config.model` ConfigDict and the shape of one example and returns an
`Autoencoder` whose `__call__(x, train=...)` gives (x̂, aux).
"""

from collections.abc import Callable, Sequence

import flax.linen as nn

from aejax.errors import ConfigError, lookup
from aejax.models.autoencoder import Autoencoder
from aejax.models.layers import ACTIVATIONS, get_activation
from aejax.models.mlp import MLPDecoder, MLPEncoder

__all__ = ["MODELS", "Autoencoder", "MLPDecoder", "MLPEncoder", "build_model", "ACTIVATIONS"]


def _positive_widths(widths, where: str, allow_empty: bool = False) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in widths)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}={widths!r} must be a list of positive integers") from None
    if (not widths and not allow_empty) or any(w <= 0 for w in widths):
        raise ConfigError(f"{where}={widths!r} must be a non-empty list of positive integers")
    return widths


def build_mlp(cfg, input_shape: Sequence[int]) -> nn.Module:
    """MLP autoencoder: encoder widths (hidden..., code), decoder mirrored unless given."""
    enc = _positive_widths(cfg.encoder_widths, "config.model.encoder_widths")
    if cfg.decoder_widths is None:  # mirror the encoder's hidden layers
        dec = tuple(reversed(enc[:-1]))
    else:
        dec = _positive_widths(cfg.decoder_widths, "config.model.decoder_widths", True)
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"config.model.dropout={cfg.dropout} must be in [0, 1)")
    for field in ("activation", "code_activation", "output_activation"):
        get_activation(cfg[field], f"config.model.{field}")
    common = dict(activation=cfg.activation, dropout=cfg.dropout, batch_norm=cfg.batch_norm)
    return Autoencoder(
        encoder=MLPEncoder(enc, **common),
        decoder=MLPDecoder(dec, tuple(input_shape), **common),
        code_activation=cfg.code_activation,
        output_activation=cfg.output_activation,
    )


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
}


def build_model(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Builds the model named `cfg.name` for examples of `input_shape`."""
    return lookup(MODELS, cfg.name, what="model", where="config.model.name")(cfg, input_shape)
