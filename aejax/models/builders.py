"""The builders of the model families: each takes the `config.model` ConfigDict and the
shape of one example and returns an `Autoencoder` (`aejax.models.interface`); the fields
only some families read, with their defaults (FAMILY_FIELDS). `aejax.models` registers them
(MODELS) and builds the one a config names (`build_model`).
"""

import math
from collections.abc import Sequence

import flax.linen as nn

from aejax.errors import ConfigError
from aejax.models import m2
from aejax.models.aae import PRIORS, AdversarialAE, Discriminator
from aejax.models.aae_cluster import CLUSTER_FIELDS, build_cluster_aae
from aejax.models.autoencoder import Autoencoder
from aejax.models.conv import (
    ConvDecoder,
    ConvEncoder,
    code_spatial_shape,
    decoder_output_hw,
    parse_decoder_layers,
)
from aejax.models.factor_vae import FactorVAE
from aejax.models.flow_vae import build_flow_vae
from aejax.models.flows import FLOW_FIELDS
from aejax.models.hvae import HVAE_FIELDS, build_hvae
from aejax.models.layers import get_activation, get_initializer
from aejax.models.manifold_vae import MANIFOLD_FIELDS, build_manifold_vae
from aejax.models.mlp import MLPDecoder, MLPEncoder
from aejax.models.rhvae import RHVAE_FIELDS, build_rhvae
from aejax.models.vae import VAE, X_LOGVAR
from aejax.models.vae_gan import VAEGAN, FeatureDiscriminator, parse_discriminator_layers
from aejax.models.vamp import VAMP_FIELDS, build_vamp
from aejax.models.vq import VQ_FIELDS, build_vq

# The fields of config.model that only some families read, with their defaults: the one
# place these defaults live (the base config holds the fields every family reads). A
# config sets the ones its family uses, so a reader sees them in the config file.
FAMILY_FIELDS = {
    "top_k": 0,  # mlp, conv, aae: keep the k largest code units (0: all)
    "x_logvar": "none",  # vae, conv_vae: none | scalar | pixel, a learned Gaussian variance
    "sample_at_eval": True,  # vae, conv_vae: sample z at evaluation (with a fixed key)
    "num_samples": 1,  # vae, conv_vae: latent samples per example (the IWAE bound's k)
    "features": (16, 32),  # conv, conv_vae: channels of each conv + pool stage
    "latent_dim": 0,  # conv, conv_vae: > 0 a Dense bottleneck of this size; 0 the feature map
    "kernel_size": 3,  # conv, conv_vae
    # conv, conv_vae: the decoder layer by layer ("conv:C", "conv:C:valid", "up"), then a
    # SAME conv to the input's channels; empty: the encoder's mirror
    "decoder_layers": (),
    # aae: the autoencoder's family, mlp | conv (a deterministic code) | vae | conv_vae (a
    # Gaussian posterior: the discriminator sees the sampled code)
    "aae_base": "mlp",
    "prior": "gaussian",  # aae: gaussian | mixture
    "discriminator_widths": (64, 64),  # aae, factor_vae, aae_cluster
    "discriminator_activation": "leaky_relu",  # aae: its discriminator's hidden layers
    **CLUSTER_FIELDS,  # aae_cluster: the categorical head (aejax/models/aae_cluster.py)
    "vae_base": "vae",  # factor_vae, vae_gan: the VAE's family, vae | conv_vae
    "discriminator_layers": ("dense:256:relu",),  # vae_gan: pythae's default MLP
    "reconstruction_layer": -1,  # vae_gan: the feature layer, 1-based; -1 the output (pythae)
    **VQ_FIELDS,  # vq_vae, conv_vq_vae: the codebook (aejax/models/vq.py)
    **VAMP_FIELDS,  # vamp_vae: the pseudo-inputs (aejax/models/vamp.py)
    **FLOW_FIELDS,  # vae_nf, vae_iaf: the flows (aejax/models/flows.py)
    **MANIFOLD_FIELDS,  # pvae: the Poincaré ball (aejax/models/manifold_vae.py)
    **HVAE_FIELDS,  # hvae, rhvae: the Hamiltonian flow (aejax/models/hvae.py)
    **RHVAE_FIELDS,  # rhvae: the Riemannian metric (aejax/models/rhvae.py)
    **m2.M2_FIELDS,  # m2: the classes, the classifier (aejax/models/m2.py); `likelihood` above
}


def _field(cfg, name: str):
    """`config.model.<name>`, or its default in FAMILY_FIELDS when the config has none."""
    return cfg[name] if name in cfg else FAMILY_FIELDS[name]


def _positive_widths(widths, where: str, allow_empty: bool = False) -> tuple[int, ...]:
    try:
        widths = tuple(widths)
    except TypeError:
        raise ConfigError(f"{where}={widths!r} must be a list of positive integers") from None
    if not all(isinstance(w, int) and not isinstance(w, bool) for w in widths):
        # int() would truncate 32.7 to 32 while config.json keeps 32.7
        raise ConfigError(f"{where}={widths!r} must be a list of positive integers")
    if (not widths and not allow_empty) or any(w <= 0 for w in widths):
        raise ConfigError(f"{where}={widths!r} must be a non-empty list of positive integers")
    return widths


def _top_k(cfg, code_size: int) -> int:
    """`config.model.top_k` (a k-sparse code; set only by the configs that use it), checked
    against the code's size."""
    top_k = _field(cfg, "top_k")
    if not isinstance(top_k, int) or not 0 <= top_k <= code_size:
        raise ConfigError(f"config.model.top_k={top_k!r} must be an integer in [0, {code_size}]")
    return top_k


def _kernel_init(cfg) -> str:
    """`config.model.kernel_init`, checked to name an initializer (`INITIALIZERS`)."""
    name = cfg.get("kernel_init", "lecun_normal")
    get_initializer(name)
    return name


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
    top_k = _top_k(cfg, enc[-1])
    common = dict(
        activation=cfg.activation,
        dropout=cfg.dropout,
        batch_norm=cfg.batch_norm,
        kernel_init=_kernel_init(cfg),
    )
    return Autoencoder(
        encoder=MLPEncoder(enc, **common),
        decoder=MLPDecoder(dec, tuple(input_shape), **common),
        code_activation=cfg.code_activation,
        output_activation=cfg.output_activation,
        top_k=top_k,
    )


def _gaussian(cfg, encoder: nn.Module, decoder: nn.Module, latent_shape) -> VAE:
    """Wraps an encoder that outputs 2x the latent's last axis in the one Gaussian latent."""
    if cfg.code_activation != "linear":
        raise ConfigError(
            f"config.model.code_activation={cfg.code_activation!r}: a Gaussian latent takes "
            "no code activation; set it to 'linear'"
        )
    if _field(cfg, "top_k"):
        raise ConfigError(
            f"config.model.top_k={cfg.top_k!r}: a Gaussian latent keeps every unit; set it to 0"
        )
    x_logvar = _field(cfg, "x_logvar")
    if x_logvar not in X_LOGVAR:
        raise ConfigError(
            f"config.model.x_logvar={x_logvar!r} is not known; valid: {', '.join(X_LOGVAR)}"
        )
    get_activation(cfg.output_activation, "config.model.output_activation")
    num_samples = _field(cfg, "num_samples")
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise ConfigError(f"config.model.num_samples={num_samples!r} must be an integer >= 1")
    return VAE(
        encoder=encoder,
        decoder=decoder,
        latent_shape=tuple(latent_shape),
        output_activation=cfg.output_activation,
        x_logvar=x_logvar,
        sample_at_eval=bool(_field(cfg, "sample_at_eval")),
        num_samples=num_samples,
    )


def build_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """MLP VAE: `encoder_widths` = (hidden..., latent size); the last layer outputs the
    means and log-variances, 2x the latent size."""
    ae = build_mlp(cfg, input_shape)
    *hidden, latent = ae.encoder.widths
    encoder = ae.encoder.clone(widths=(*hidden, 2 * latent))
    return _gaussian(cfg, encoder, ae.decoder, (latent,))


def _conv_parts(cfg, input_shape: Sequence[int]):
    """The conv encoder and decoder of `cfg` (features, latent_dim, kernel_size), checked."""
    if len(input_shape) != 3:
        raise ConfigError(
            f"config.model.name={cfg.name!r} needs image examples (H, W, C); the data's are "
            f"shaped {tuple(input_shape)}"
        )
    features = _positive_widths(_field(cfg, "features"), "config.model.features")
    latent_dim, kernel = _field(cfg, "latent_dim"), _field(cfg, "kernel_size")
    if not isinstance(latent_dim, int) or latent_dim < 0:
        raise ConfigError(f"config.model.latent_dim={latent_dim!r} must be an integer >= 0")
    if not isinstance(kernel, int) or kernel <= 0:
        raise ConfigError(f"config.model.kernel_size={kernel!r} must be a positive integer")
    if cfg.dropout or cfg.batch_norm:
        raise ConfigError("config.model.dropout and batch_norm are not supported by conv models")
    for field in ("activation", "code_activation", "output_activation"):
        get_activation(cfg[field], f"config.model.{field}")
    common = dict(kernel_size=kernel, activation=cfg.activation, kernel_init=_kernel_init(cfg))
    code_shape = (*code_spatial_shape(input_shape, len(features)), features[-1])
    layers = parse_decoder_layers(_field(cfg, "decoder_layers"))
    if layers:
        hw = decoder_output_hw(code_shape[:2], layers, kernel)
        if min(hw) < 1 or hw[0] < input_shape[0] or hw[1] < input_shape[1]:
            raise ConfigError(
                f"config.model.decoder_layers={_field(cfg, 'decoder_layers')!r} decodes the "
                f"{code_shape[0]}x{code_shape[1]} code to {hw[0]}x{hw[1]}, smaller than the "
                f"{input_shape[0]}x{input_shape[1]} input"
            )
    encoder = ConvEncoder(features, latent_dim, **common)
    decoder = ConvDecoder(
        tuple(reversed(features[:-1])),
        code_shape,
        tuple(input_shape),
        from_vector=latent_dim > 0,
        layers=layers,
        **common,
    )
    return encoder, decoder, (latent_dim,) if latent_dim else code_shape


def build_conv(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Conv autoencoder: `features` per conv + pool stage (the seeds' (16, 32)), a spatial
    code, or a vector of `latent_dim` > 0 through a Dense bottleneck; decoder mirrored."""
    encoder, decoder, code_shape = _conv_parts(cfg, input_shape)
    return Autoencoder(
        encoder=encoder,
        decoder=decoder,
        code_activation=cfg.code_activation,
        output_activation=cfg.output_activation,
        top_k=_top_k(cfg, math.prod(code_shape)),
    )


def build_conv_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Conv VAE: the conv encoder with twice the latent channels (the means and
    log-variances) of a latent vector (latent_dim > 0) or of a latent feature map."""
    encoder, decoder, latent_shape = _conv_parts(cfg, input_shape)
    if encoder.latent_dim:
        encoder = encoder.clone(latent_dim=2 * encoder.latent_dim)
    else:
        encoder = encoder.clone(features=(*encoder.features[:-1], 2 * encoder.features[-1]))
    return _gaussian(cfg, encoder, decoder, latent_shape)


def build_aae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Adversarial autoencoder: the `aae_base` family's autoencoder ("mlp", "conv", or with a
    Gaussian posterior "vae", "conv_vae"; the conv ones with a latent vector of
    `latent_dim`), a discriminator MLP of `discriminator_widths` and
    `discriminator_activation` on its code, and a `prior` ("gaussian" or "mixture")."""
    base = _field(cfg, "aae_base")
    builders = {"mlp": build_mlp, "conv": build_conv, "vae": build_vae, "conv_vae": build_conv_vae}
    if base not in builders:
        raise ConfigError(
            f"config.model.aae_base={base!r} is not known; valid: {', '.join(sorted(builders))}"
        )
    ae = builders[base](cfg, input_shape)
    if isinstance(ae, VAE):
        latent = ae.latent_shape[0] if len(ae.latent_shape) == 1 else 0
    else:
        latent = ae.encoder.widths[-1] if base == "mlp" else ae.encoder.latent_dim
    if not latent:
        raise ConfigError(
            f"config.model.latent_dim must be > 0 for an adversarial {base} AE: the "
            "discriminator and the prior need a code vector"
        )
    prior = _field(cfg, "prior")
    if prior not in PRIORS:
        raise ConfigError(f"config.model.prior={prior!r} is not known; valid: {', '.join(PRIORS)}")
    widths = _positive_widths(
        _field(cfg, "discriminator_widths"), "config.model.discriminator_widths"
    )
    activation = _field(cfg, "discriminator_activation")
    get_activation(activation, "config.model.discriminator_activation")
    return AdversarialAE(ae, Discriminator(widths, activation), latent_dim=latent, prior=prior)


def build_aae_cluster(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Clustering AAE (Makhzani et al., 2016, §6): the MLP autoencoder with a head of
    `num_clusters` softmax units beside its style code and two discriminators of
    `discriminator_widths` (`aejax.models.aae_cluster`)."""
    widths = _positive_widths(
        _field(cfg, "discriminator_widths"), "config.model.discriminator_widths"
    )
    return build_cluster_aae(cfg, build_mlp(cfg, input_shape), widths)


def build_vq_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """VQ-VAE (van den Oord et al., 2017): the MLP autoencoder with its code quantized to
    the nearest of `num_embeddings` codebook vectors (`aejax.models.vq`)."""
    return build_vq(cfg, build_mlp(cfg, input_shape), input_shape)


def build_conv_vq_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Conv VQ-VAE: the conv autoencoder with each spatial position of its code feature map
    (latent_dim = 0), or its code vector (latent_dim > 0), quantized (`aejax.models.vq`)."""
    return build_vq(cfg, build_conv(cfg, input_shape), input_shape)


def build_factor_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """FactorVAE (`aejax.models.factor_vae`): a `vae_base` VAE ("vae" or "conv_vae" with a
    latent vector) and a discriminator MLP of `discriminator_widths` on its code."""
    base = _field(cfg, "vae_base")
    builders = {"vae": build_vae, "conv_vae": build_conv_vae}
    if base not in builders:
        raise ConfigError(f"config.model.vae_base={base!r} is not known; valid: conv_vae, vae")
    vae = builders[base](cfg, input_shape)
    if len(vae.latent_shape) != 1:
        raise ConfigError(
            "config.model.latent_dim must be > 0 for a FactorVAE on a conv VAE: the "
            "discriminator shuffles the dimensions of a code vector"
        )
    widths = _positive_widths(
        _field(cfg, "discriminator_widths"), "config.model.discriminator_widths"
    )
    return FactorVAE(vae, Discriminator(widths))


def build_vamp_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """VampPrior VAE (Tomczak & Welling, 2018): the MLP VAE whose prior is the mixture of
    its posteriors at `num_pseudo_inputs` learned pseudo-inputs (`aejax.models.vamp`)."""
    return build_vamp(cfg, build_vae(cfg, input_shape), input_shape)


def build_vae_gan(cfg, input_shape: Sequence[int]) -> nn.Module:
    """VAE-GAN (Larsen et al., 2016): a `vae_base` VAE ("vae" or "conv_vae") and a
    discriminator of `discriminator_layers` on images, whose layer `reconstruction_layer`
    (1-based; -1 its output) gives the features."""
    base = _field(cfg, "vae_base")
    builders = {"vae": build_vae, "conv_vae": build_conv_vae}
    if base not in builders:
        raise ConfigError(f"config.model.vae_base={base!r} is not known; valid: conv_vae, vae")
    vae = builders[base](cfg, input_shape)
    if vae.num_samples != 1 or vae.x_logvar != "none":
        raise ConfigError(
            "config.model.num_samples must be 1 and x_logvar 'none' for a VAE-GAN (its "
            "likelihood is the discriminator's features)"
        )
    layers = parse_discriminator_layers(_field(cfg, "discriminator_layers"), input_shape)
    level = _field(cfg, "reconstruction_layer")
    depth = len(layers) + 1
    if (
        isinstance(level, bool)
        or not isinstance(level, int)
        or not (1 <= level <= depth or level == -1)
    ):
        raise ConfigError(
            f"config.model.reconstruction_layer={level!r} must be an integer in 1..{depth} "
            f"(the discriminator's {depth} layers) or -1 (its output)"
        )
    feature_layer = depth if level == -1 else level
    return VAEGAN(vae, FeatureDiscriminator(layers, feature_layer, _kernel_init(cfg)))


def build_vae_nf(cfg, input_shape: Sequence[int]) -> nn.Module:
    """MLP VAE whose Gaussian posterior goes through the planar and radial flows listed in
    `flows` (pythae's VAE_LinNF; `aejax.models.flow_vae`)."""
    return build_flow_vae(cfg, build_vae(cfg, input_shape), "nf")


def build_vae_iaf(cfg, input_shape: Sequence[int]) -> nn.Module:
    """MLP VAE whose Gaussian posterior goes through an inverse autoregressive flow of
    `iaf_blocks` MADE blocks (pythae's VAE_IAF; `aejax.models.flow_vae`)."""
    return build_flow_vae(cfg, build_vae(cfg, input_shape), "iaf")


def build_svae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Hyperspherical VAE (Davidson et al., 2018): the MLP autoencoder with a von
    Mises-Fisher posterior on S^(d-1) and a uniform prior (`aejax.models.manifold_vae`)."""
    return build_manifold_vae(cfg, build_mlp(cfg, input_shape), input_shape, "svae")


def build_pvae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Poincaré VAE (Mathieu et al., 2019): the MLP autoencoder with wrapped normal
    posterior and prior on the Poincaré ball (`aejax.models.manifold_vae`)."""
    return build_manifold_vae(cfg, build_mlp(cfg, input_shape), input_shape, "pvae")


def build_hamiltonian_vae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Hamiltonian VAE (Caterini et al., 2018): the MLP VAE's encoder and decoder with K
    tempered leapfrog steps on log p(x, z) after the encoder (`aejax.models.hvae`)."""
    return build_hvae(cfg, build_vae(cfg, input_shape))


def build_riemannian_hvae(cfg, input_shape: Sequence[int]) -> nn.Module:
    """Riemannian Hamiltonian VAE (Chadebec et al., 2020): the HVAE with a learned metric
    from the training codes and the generalized leapfrog (`aejax.models.rhvae`)."""
    return build_rhvae(cfg, build_vae(cfg, input_shape))


def build_m2(cfg, input_shape: Sequence[int]) -> nn.Module:
    """M2 (Kingma et al., 2014): q(y|x), q(z|x,y) and p(x|y,z), MLPs, on partly labelled
    examples (`aejax.models.m2`, the "partly_labelled" data source)."""
    build_mlp(cfg, input_shape)  # checks the widths, activations, dropout
    widths = _positive_widths(_field(cfg, "classifier_widths"), "config.model.classifier_widths")
    common = dict(activation=cfg.activation, dropout=cfg.dropout, batch_norm=cfg.batch_norm)
    common["kernel_init"] = _kernel_init(cfg)
    parts = lambda w, out, enc: MLPEncoder(w, **common) if enc else MLPDecoder(w, out, **common)
    field = lambda name: widths if name == "classifier_widths" else _field(cfg, name)
    return m2.build(cfg, input_shape, parts, field)
