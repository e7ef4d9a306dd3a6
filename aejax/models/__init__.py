"""Model families (flax.linen modules only) and the MODELS registry.

A builder takes the `config.model` ConfigDict and the shape of one example and returns an
`Autoencoder` whose `__call__(x, train=...)` gives (x̂, aux).
"""

from collections.abc import Callable, Sequence

import flax.linen as nn

from aejax.models import interface
from aejax.models.aae import AdversarialAE
from aejax.models.aae_cluster import ClusterAAE
from aejax.models.autoencoder import Autoencoder
from aejax.models.builders import (
    FAMILY_FIELDS,
    build_aae,
    build_aae_cluster,
    build_conv,
    build_conv_vae,
    build_conv_vq_vae,
    build_factor_vae,
    build_hamiltonian_vae,
    build_m2,
    build_mlp,
    build_pvae,
    build_riemannian_hvae,
    build_svae,
    build_vae,
    build_vae_gan,
    build_vae_iaf,
    build_vae_nf,
    build_vamp_vae,
    build_vq_vae,
)
from aejax.models.conv import ConvDecoder, ConvEncoder
from aejax.models.layers import ACTIVATIONS, INITIALIZERS
from aejax.models.mlp import MLPDecoder, MLPEncoder
from aejax.models.vae import VAE
from aejax.models.vae_gan import VAEGAN
from aejax.models.vamp import VampVAE
from aejax.models.vq import VQAutoencoder
from aejax.registry import add, resolve

__all__ = [
    "MODELS",
    "FAMILY_FIELDS",
    "AdversarialAE",
    "ClusterAAE",
    "VAE",
    "VAEGAN",
    "VQAutoencoder",
    "VampVAE",
    "Autoencoder",
    "ConvDecoder",
    "ConvEncoder",
    "MLPDecoder",
    "MLPEncoder",
    "build_model",
    "interface",
    "register_model",
    "ACTIVATIONS",
    "INITIALIZERS",
]


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
    "vae": build_vae,
    "conv": build_conv,
    "conv_vae": build_conv_vae,
    "aae": build_aae,
    "aae_cluster": build_aae_cluster,
    "vq_vae": build_vq_vae,
    "conv_vq_vae": build_conv_vq_vae,
    "factor_vae": build_factor_vae,
    "vamp_vae": build_vamp_vae,
    "vae_gan": build_vae_gan,
    "vae_nf": build_vae_nf,
    "vae_iaf": build_vae_iaf,
    "svae": build_svae,
    "pvae": build_pvae,
    "hvae": build_hamiltonian_vae,
    "rhvae": build_riemannian_hvae,
    "m2": build_m2,
}


def register_model(name: str, builder: Callable[..., nn.Module] | None = None):
    """Adds a model family: `builder(cfg, input_shape) -> module`, where cfg is
    `config.model` and the module follows `aejax.models.interface` (also as a decorator).
    Configs then name it in `config.model.name`; `module:function` names a builder in
    your own code without registering it."""
    return (
        (lambda b: add(MODELS, name, b, "model"))
        if builder is None
        else add(MODELS, name, builder, "model")
    )


def build_model(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Builds the model named `cfg.name` for examples of `input_shape`, and checks that it
    has the interface evaluation needs (`interface.check`)."""
    builder = resolve(MODELS, cfg.name, what="model", where="config.model.name")
    return interface.check(builder(cfg, input_shape), cfg.name)
