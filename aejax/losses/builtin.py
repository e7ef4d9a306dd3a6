"""The built-in loss terms, each registered once under its name (`aejax.losses`), with
what it is: batch-level, its options' domains, its units."""

from aejax.contractive import contractive
from aejax.losses import (
    chroma,
    clustering,
    disentangle,
    importance,
    mmd,
    msssim,
    regularizers,
    semisup,
    vaegan,
)
from aejax.losses.terms import (
    adv_discriminator,
    adv_generator,
    bce,
    bce_mean,
    gaussian_nll,
    gaussian_nll_learned,
    iwae_bce,
    kl_normal,
    kl_sample,
    kl_sparsity,
    l1_activity,
    mse,
    mse_mean,
)
from aejax.losses.vmf import kl_vmf
from aejax.losses.vq import vq_codebook, vq_commitment, vq_perplexity, vq_usage


def register_all(register_loss) -> None:
    """Registers every built-in term with `register_loss` (aejax.losses calls this once)."""
    register_loss("mse", mse, features="sum")
    register_loss("bce", bce, features="sum")
    register_loss("mse_mean", mse_mean, features="mean")
    register_loss("bce_mean", bce_mean, features="mean")
    register_loss(
        "gaussian_nll",
        gaussian_nll,
        domains={"variance": (lambda v: v > 0.0, "> 0")},
        features="sum",
    )
    register_loss("gaussian_nll_learned", gaussian_nll_learned, features="sum")
    register_loss("kl_normal", kl_normal)
    register_loss("kl_sample", kl_sample)
    register_loss("kl_vmf", kl_vmf)  # the hyperspherical VAE's (aejax.losses.vmf)
    register_loss("iwae_bce", iwae_bce, features="sum")
    # MIWAE and CIWAE (aejax.losses.importance): bounds on the same samples as iwae_bce.
    _M = {"groups": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1")}
    register_loss("miwae_bce", importance.miwae_bce, domains=_M, features="sum")
    _BETA = {"beta": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]")}
    register_loss("ciwae_bce", importance.ciwae_bce, domains=_BETA, features="sum")
    register_loss("l1_activity", l1_activity)
    register_loss(
        "kl_sparsity",
        kl_sparsity,
        batch=True,
        domains={
            "rho": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
            "eps": (lambda v: 0.0 < v < 0.5, "in (0, 0.5)"),
        },
    )
    # The WAE / InfoVAE terms (aejax.losses.mmd) and the RAE's (aejax.losses.regularizers).
    _BANDWIDTH = {"bandwidth": (lambda v: v > 0, "> 0")}
    register_loss("mmd_imq", mmd.mmd_imq, batch=True, domains=_BANDWIDTH)
    register_loss("mmd_rbf", mmd.mmd_rbf, batch=True, domains=_BANDWIDTH)
    register_loss("code_l2", regularizers.code_l2)
    register_loss("decoder_l2", regularizers.decoder_l2)
    register_loss("decoder_gradient_penalty", regularizers.decoder_gradient_penalty)
    register_loss("decoder_jacobian", regularizers.decoder_jacobian)
    register_loss("contractive", contractive)
    register_loss("adv_discriminator", adv_discriminator)
    register_loss("adv_generator", adv_generator)
    # The clustering AAE's category discriminator (aejax.losses.clustering).
    register_loss("adv_cat_discriminator", clustering.adv_cat_discriminator)
    register_loss("adv_cat_generator", clustering.adv_cat_generator)
    register_loss("msssim", msssim.msssim, domains=msssim.DOMAINS)
    register_loss("chroma_mse", chroma.chroma_mse, features="sum")  # colorization's
    register_loss("feature_nll", vaegan.feature_nll)
    for _name, _domains in vaegan.GATED.items():  # the VAE-GAN's gates read the whole batch
        register_loss(_name, getattr(vaegan, _name), batch=True, domains=_domains)
    del _name, _domains
    register_loss("vq_codebook", vq_codebook)
    register_loss("vq_commitment", vq_commitment)
    # Measurements of the whole batch (log them with weight 0), refused under pmap like kl_sparsity
    register_loss("vq_perplexity", vq_perplexity, batch=True)
    register_loss("vq_usage", vq_usage, batch=True)
    # The disentangling VAEs' terms (aejax.losses.disentangle), each over the whole batch.
    register_loss("tc_mutual_information", disentangle.tc_mutual_information, batch=True)
    register_loss("tc_total_correlation", disentangle.tc_total_correlation, batch=True)
    register_loss("tc_dimwise_kl", disentangle.tc_dimwise_kl, batch=True)
    _CAPACITY = {
        "capacity_max": (lambda v: v >= 0, ">= 0"),
        "anneal_steps": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
        "stair_steps": (lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    }
    register_loss("kl_capacity", disentangle.kl_capacity, batch=True, domains=_CAPACITY)
    register_loss("kl_capacity_example", disentangle.kl_capacity_example, domains=_CAPACITY)
    register_loss("factor_tc", disentangle.factor_tc)
    register_loss("factor_discriminator", disentangle.factor_discriminator, batch=True)
    # M2's semi-supervised terms (aejax.losses.semisup), on partly labelled examples.
    register_loss("m2_elbo", semisup.m2_elbo)
    register_loss("m2_elbo_gaussian", semisup.m2_elbo_gaussian)
    register_loss("m2_classify", semisup.m2_classify)
    register_loss("m2_labelled", semisup.m2_labelled)
