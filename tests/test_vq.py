"""VQ-VAE: the quantizer against NumPy, the straight-through gradient, the terms and the EMA
step by hand, perplexity, exact resume of the EMA codebook, the report's bits, a tiny run
that learns, and bad VQ settings refused in one line."""

import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config
from jax.test_util import check_grads
from test_denoising import load_config

from aejax import losses, models, report, train
from aejax.errors import ConfigError
from aejax.models import interface
from aejax.models.vq import VectorQuantizer, ema_update, nearest_code, straight_through


def vq_config(**overrides):
    defaults = {
        "model.name": "vq_vae",
        "model.encoder_widths": (32, 8),
        "model.num_embeddings": 16,
        "model.code_groups": 2,
        "loss": "mse + vq_codebook + 0.25*vq_commitment + 0*vq_perplexity + 0*vq_usage",
    }
    return tiny_config(**{**defaults, **overrides})


def test_nearest_code_and_quantizer_match_numpy():
    kz, ke = jax.random.split(jax.random.key(0))
    z = np.asarray(jax.random.normal(kz, (5, 3, 4)))
    book = np.asarray(jax.random.normal(ke, (7, 4)))
    want = np.argmin(((z[..., None, :] - book) ** 2).sum(-1), axis=-1)  # [5, 3]
    assert len(np.unique(want)) > 2  # the check sees several codes
    np.testing.assert_array_equal(nearest_code(jnp.asarray(z), jnp.asarray(book)), want)

    vq = VectorQuantizer(7)
    v = vq.init(jax.random.key(1), jnp.asarray(z))
    k = 7
    assert set(v) == {"params"}  # without EMA the codebook is a parameter
    cb = np.asarray(v["params"]["codebook"])
    assert cb.shape == (7, 4) and cb.min() >= -1 / k and cb.max() < 1 / k  # pythae's init
    v = {"params": {"codebook": jnp.asarray(book)}}
    z_q, idx, codebook = vq.apply(v, jnp.asarray(z))
    np.testing.assert_array_equal(idx, want)
    np.testing.assert_array_equal(z_q, book[want])
    np.testing.assert_array_equal(codebook, book)


def test_straight_through_passes_the_decoders_gradient_to_the_encoder():
    z_e = jnp.array([[0.3, -1.2], [2.0, 0.5]])
    z_q = jnp.array([[0.0, -1.0], [1.5, 1.0]])
    w = jnp.array([[1.0, 2.0], [-3.0, 0.5]])
    decoder_loss = lambda z: jnp.sum(w * jnp.sin(z) ** 2)
    np.testing.assert_array_equal(straight_through(z_e, z_q), z_q)  # the value of z_q
    g_e = jax.grad(lambda e: decoder_loss(straight_through(e, z_q)))(z_e)
    np.testing.assert_allclose(g_e, jax.grad(decoder_loss)(z_q), rtol=1e-6)
    g_q = jax.grad(lambda q: decoder_loss(straight_through(z_e, q)))(z_q)
    np.testing.assert_array_equal(g_q, 0.0)  # the codebook learns from its own term only


def test_model_decodes_the_codebook_vectors_with_the_encoders_gradient():
    config = vq_config()
    model = models.build_model(config.model, (8, 8, 1))
    x = jax.random.uniform(jax.random.key(0), (4, 8, 8, 1))
    v = model.init(jax.random.key(1), x)
    _, aux = model.apply(v, x)
    assert aux["z_e"].shape == aux["z_q"].shape == (4, 2, 4)  # code 8 cut into 2 vectors of 4
    assert aux["code_indices"].shape == (4, 2) and aux["codebook"].shape == (16, 4)
    np.testing.assert_array_equal(aux["z"], aux["z_q"])
    np.testing.assert_array_equal(model.apply(v, x, method="encode"), aux["z_q"])
    np.testing.assert_array_equal(aux["z_q"], np.asarray(aux["codebook"])[aux["code_indices"]])
    # d mse / d z_e (through the straight-through estimator) is d mse / d z at z = z_q.
    x_in = x

    def mse_of_z(z):
        _, logits = model.apply(v, z, method="decode")
        return jnp.sum((jax.nn.sigmoid(logits) - x_in) ** 2)

    def mse_of_z_e(z_e):
        return mse_of_z(straight_through(z_e, aux["z_q"]))

    np.testing.assert_allclose(
        jax.grad(mse_of_z_e)(aux["z_e"]), jax.grad(mse_of_z)(aux["z_q"]), rtol=1e-6
    )
    assert interface.codebook_size_of(model) == 16
    plain = models.build_model(tiny_config().model, (8, 8, 1))
    assert interface.codebook_size_of(plain) is None


def test_terms_by_hand_and_their_gradients():
    z_e = jnp.array([[[1.0, 2.0], [0.0, -1.0]], [[3.0, 0.5], [2.0, 2.0]]])  # [B=2, P=2, D=2]
    z_q = jnp.array([[[0.0, 2.0], [1.0, 1.0]], [[3.0, 0.0], [0.0, 2.0]]])
    want = [1.0 + 0.0 + 1.0 + 4.0, 0.0 + 0.25 + 4.0 + 0.0]
    np.testing.assert_allclose(losses.vq_codebook(z_e=z_e, z_q=z_q), want)
    np.testing.assert_allclose(losses.vq_commitment(z_e=z_e, z_q=z_q), want)
    total = lambda term, e, q: jnp.sum(term(z_e=e, z_q=q))
    # The codebook term moves only the codes, the commitment term only the encoder.
    g_e, g_q = jax.grad(lambda e, q: total(losses.vq_codebook, e, q), (0, 1))(z_e, z_q)
    np.testing.assert_array_equal(g_e, 0.0)
    np.testing.assert_allclose(g_q, 2 * (z_q - z_e))
    g_e, g_q = jax.grad(lambda e, q: total(losses.vq_commitment, e, q), (0, 1))(z_e, z_q)
    np.testing.assert_allclose(g_e, 2 * (z_e - z_q))
    np.testing.assert_array_equal(g_q, 0.0)
    check_grads(lambda q: losses.vq_codebook(z_e=z_e, z_q=q), (z_q,), order=2, modes=["rev"])
    check_grads(lambda e: losses.vq_commitment(z_e=e, z_q=z_q), (z_e,), order=2, modes=["rev"])


def test_perplexity_and_usage_by_hand():
    idx = jnp.array([[0, 0], [1, 2]])  # frequencies 1/2, 1/4, 1/4, 0 over K = 4
    book = jnp.zeros((4, 3))
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    np.testing.assert_allclose(
        losses.vq_perplexity(code_indices=idx, codebook=book), [math.exp(entropy)] * 2, rtol=1e-6
    )
    np.testing.assert_allclose(losses.vq_usage(code_indices=idx, codebook=book), [0.75, 0.75])
    one = jnp.zeros((3, 5), jnp.int32)
    np.testing.assert_allclose(losses.vq_perplexity(code_indices=one, codebook=book), 1.0)
    every = jnp.arange(8).reshape(2, 4) % 4
    np.testing.assert_allclose(losses.vq_perplexity(code_indices=every, codebook=book), 4.0)
    assert losses.is_batch_term("vq_perplexity") and not losses.is_batch_term("vq_commitment")


def _ema_by_hand(size, total, z, idx, decay, eps):
    """The EMA step written out code by code in NumPy."""
    k = len(size)
    size, total = size.astype(np.float64).copy(), total.astype(np.float64).copy()
    for j in range(k):
        mine = z[idx == j]
        size[j] = decay * size[j] + (1 - decay) * len(mine)
        total[j] = decay * total[j] + (1 - decay) * mine.sum(0)
    n = size.sum()
    book = np.stack([total[j] / ((size[j] + eps) / (n + k * eps) * n) for j in range(k)])
    return size, total, book


def test_ema_update_matches_a_hand_step():
    size = np.array([1.0, 2.0, 0.5])
    total = np.array([[0.5, 0.5], [1.0, -2.0], [0.0, 0.25]])
    z = np.array([[0.0, 1.0], [2.0, 2.0], [1.0, -1.0], [4.0, 0.0]])
    idx = np.array([1, 1, 0, 1])  # code 2 is not chosen
    got = ema_update(
        jnp.asarray(size),
        jnp.asarray(total),
        jnp.asarray(z),
        jnp.asarray(idx),
        decay=0.9,
        epsilon=1e-3,
    )
    for a, b in zip(got, _ema_by_hand(size, total, z, idx, 0.9, 1e-3), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # The same numbers by hand for code 0: N = 0.9 + 0.1, m = 0.9*(0.5, 0.5) + 0.1*(1, -1).
    np.testing.assert_allclose(got[0][0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(got[1][0], [0.55, 0.35], rtol=1e-6)


def test_ema_quantizer_updates_its_state_in_training_only():
    vq = VectorQuantizer(5, ema=True, decay=0.8, epsilon=1e-4)
    z = jax.random.normal(jax.random.key(0), (6, 3))
    v = vq.init(jax.random.key(1), z)
    assert set(v) == {"vq_ema"}  # no parameters: the codebook is state
    state = v["vq_ema"]
    np.testing.assert_array_equal(state["cluster_size"], 0.0)
    np.testing.assert_array_equal(state["embed_sum"], state["codebook"])
    (_, idx, _), new = vq.apply(v, z, train=True, mutable=["vq_ema"])
    want = _ema_by_hand(
        np.asarray(state["cluster_size"]),
        np.asarray(state["embed_sum"]),
        np.asarray(z),
        np.asarray(idx),
        0.8,
        1e-4,
    )
    for name, b in zip(("cluster_size", "embed_sum", "codebook"), want, strict=True):
        np.testing.assert_allclose(new["vq_ema"][name], b, rtol=1e-5)
    _, same = vq.apply(v, z, train=False, mutable=["vq_ema"])
    for name in state:
        np.testing.assert_array_equal(same["vq_ema"][name], state[name])


def _rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_ema_codebook_is_checkpointed_and_resumed_bit_exactly(tmp_path):
    config = vq_config(
        **{"model.codebook_ema": True, "loss": "mse + 0.25*vq_commitment + 0*vq_perplexity"}
    )
    whole, _ = train.train_and_evaluate(config, str(tmp_path / "whole"))
    cut = str(tmp_path / "cut")
    train.train_and_evaluate(config, cut, stop_after=4)
    resumed, _ = train.train_and_evaluate(config, cut)
    restored = train.Experiment.from_workdir(cut).restore_or_init(require_checkpoint=True)
    fresh = train.Experiment.from_config(config, str(tmp_path / "fresh")).init_state()
    assert set(whole.model_state) == {"vq_ema"}
    assert "codebook" not in str(jax.tree_util.tree_structure(whole.params))
    moved = np.asarray(whole.model_state["vq_ema"]["quantizer"]["codebook"])
    start = np.asarray(fresh.model_state["vq_ema"]["quantizer"]["codebook"])
    assert np.abs(moved - start).max() > 1e-3  # the EMA moved it
    for a, b, c in zip(
        jax.tree.leaves(whole), jax.tree.leaves(resumed), jax.tree.leaves(restored), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


@pytest.mark.parametrize("name", ["vq_vae", "conv_vq_vae"])
def test_tiny_run_learns_logs_the_codebook_and_reports_bits_as_indices(tmp_path, name):
    overrides = {"model.name": name, "num_steps": 60, "eval_every_steps": 60}
    overrides |= {"checkpoint_every_steps": 60, "log_every_steps": 10}
    overrides |= {"optimizer.learning_rate": 1e-2}
    if name == "conv_vq_vae":  # a 2x2 map of 8-d code vectors
        overrides |= {"model.features": (8, 8), "model.latent_dim": 0, "model.code_groups": 1}
    workdir = str(tmp_path / name)
    _, final = train.train_and_evaluate(vq_config(**overrides), workdir)
    train_rows = [r for r in _rows(workdir) if "train/loss" in r]
    assert train_rows[-1]["train/loss"] < 0.8 * train_rows[0]["train/loss"]
    for split in ("train", "test"):
        row = train_rows[-1] if split == "train" else final
        assert 1.0 <= row[f"{split}/vq_perplexity"] <= 16.0
        assert 0.0 < row[f"{split}/vq_usage"] <= 1.0
        # weight 0: logged, not counted in the total
        terms = row[f"{split}/mse"] + row[f"{split}/vq_codebook"]
        terms += 0.25 * row[f"{split}/vq_commitment"]
        assert row[f"{split}/loss"] == pytest.approx(terms, rel=1e-4)
    report.write_report(workdir, sections=("compression",))
    with open(os.path.join(workdir, "report", "report.json")) as f:
        rows = json.load(f)["sections"]["compression"]["rows"]
    code = {r["representation"]: r for r in rows}["code, indices (K = 16)"]
    positions = 2 if name == "vq_vae" else 4  # two vectors; or a 2x2 map
    assert code["bits / example"] == positions * 4  # log2(16) bits each
    assert code["sq. error"] == pytest.approx(final["test/sq_err_per_image"], rel=1e-4)
    coded = {r["representation"]: r for r in rows}["code, indices entropy-coded"]
    assert 0 < coded["bits / example"] and coded["sq. error"] == code["sq. error"]


def test_entropy_coded_index_bits_by_hand():
    # Training codes a, a, a, b; test codes a, b, c; K = 4, add-one smoothed over 4 + 4:
    # p(a) = 4/8 (1 bit), p(b) = 2/8 (2 bits), p(c) = 1/8 (3 bits): 2 bits on average.
    a, b, c = [0.5, 1.0], [-1.0, 0.0], [2.0, 2.0]
    train_codes = np.array([[a, a], [a, b]])  # [N=2, positions=2, D=2]
    test_codes = np.array([[a], [b], [c]])
    assert report.generative.index_bits(train_codes, test_codes, 4) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.num_embeddings", 1, r"num_embeddings=1 must be an integer in \[2"),
        ("model.num_embeddings", 2.5, "num_embeddings=2.5 must be an integer"),
        ("model.num_embeddings", True, "num_embeddings=True must be an integer"),
        ("model.code_groups", 3, "code_groups=3 must divide the code's last axis, 8"),
        ("model.code_groups", 0, "code_groups=0 must be an integer >= 1"),
        ("model.ema_decay", 1.0, r"ema_decay=1.0 must be a finite number in \[0, 1\)"),
        ("model.ema_decay", float("nan"), "ema_decay=nan must be a finite number"),
        ("model.ema_epsilon", 0.0, "ema_epsilon=0.0 must be a finite number > 0"),
        ("model.codebook_ema", "yes", "codebook_ema='yes' must be true or false"),
        ("model.code_activation", "relu", "code_activation='relu': a vector-quantized code"),
        ("model.top_k", 2, "top_k=2: a vector-quantized code takes none"),
    ],
)
def test_bad_vq_settings_are_refused_in_one_line(field, value, message):
    config = vq_config()
    config.model.unlock()
    *_, last = field.split(".")
    with config.ignore_type():
        config.model[last] = value
    with pytest.raises(ConfigError, match=message) as info:
        models.build_model(config.model, (8, 8, 1))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("preset", ["digits", "digits_ema", "conv", "mnist", "mnist_ema"])
def test_presets_build(preset):
    config = load_config("vq_vae.py", preset)
    shape = (28, 28, 1) if preset.startswith("mnist") else (8, 8, 1)
    model = models.build_model(config.model, shape)
    assert interface.codebook_size_of(model) == 512
    assert model.quantizer.ema == preset.endswith("_ema")
    assert ("vq_codebook" in losses.parse_recipe(config.loss)) != preset.endswith("_ema")
    if preset.startswith("mnist"):  # pythae's default: 784-512-16, one 16-d code vector
        assert tuple(config.model.encoder_widths) == (512, 16) and config.model.code_groups == 1


def _train_script(args, **env):
    """experiments/train.py in a subprocess, with this checkout's aejax."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, **env)
    script = os.path.join(root, "experiments", "train.py")
    return subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_ema_state_and_batch_diagnostics_are_refused_under_pmap_on_two_devices(tmp_path):
    """Under pmap each device would count only its share of the batch's codes: refused in
    one line before anything is written (jit computes over the global batch)."""
    workdir = tmp_path / "run"
    config = "vq_vae:digits_ema"
    result = _train_script(
        ["--config", config, "--workdir", str(workdir), "--config.parallelism=pmap"],
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "'vq_ema' state" in line and "'vq_perplexity'" in line and "pmap" in line
    assert not workdir.exists()
    result = _train_script(
        ["--config", config, "--workdir", str(workdir), "--config.model.ema_decay=1.5"]
    )
    assert result.returncode == 2 and not workdir.exists()
    assert result.stderr.strip().splitlines() == [
        "error: config.model.ema_decay=1.5 must be a finite number in [0, 1)"
    ]


_TWO_DEVICES = """
import json, sys
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
from test_vq import vq_config
from aejax import train

config = vq_config(**{"model.codebook_ema": True, "loss": "mse + 0.25*vq_commitment"})
config.num_steps, config.eval_every_steps, config.checkpoint_every_steps = 12, 12, 12
states = []
for n in (1, 2):
    config.num_devices = n
    state, _ = train.train_and_evaluate(config, f"{sys.argv[2]}/{n}")
    states.append(jax.tree.map(np.asarray, state))
diffs = [float(np.abs(a - b).max()) for a, b in zip(*map(jax.tree.leaves, states), strict=True)]
moved = float(np.abs(states[1].model_state["vq_ema"]["quantizer"]["cluster_size"]).max())
print(json.dumps({"devices": jax.device_count(), "max_diff": max(diffs), "moved": moved}))
"""


def test_ema_codebook_under_jit_on_two_devices_matches_one_device(tmp_path):
    """Under jit the step is written for the global batch: the EMA counts every device's
    codes, so two devices reach the codebook and the parameters of one."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(here))
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    result = subprocess.run(
        [sys.executable, "-c", _TWO_DEVICES, here, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2 and out["moved"] > 0.01
    assert out["max_diff"] < 1e-5


@pytest.mark.parametrize(
    "overrides, code",
    [
        ({}, (2, 4)),  # the MLP's 8-d code cut into 2 vectors
        ({"model.code_groups": 1}, (8,)),  # one 8-d vector
        ({"model.name": "conv_vq_vae", "model.features": (4, 6)}, (2, 2, 2, 3)),  # 2x2 map, 2 each
        ({"model.name": "conv_vq_vae", "model.latent_dim": 6}, (2, 3)),  # a Dense bottleneck
    ],
)
def test_code_vectors_of_each_family_decode_back(overrides, code):
    config = vq_config(**{"model.features": (4, 8), "model.latent_dim": 0, **overrides})
    model = models.build_model(config.model, (8, 8, 1))
    x = jax.random.uniform(jax.random.key(0), (3, 8, 8, 1))
    v = model.init(jax.random.key(1), x)
    z = model.apply(v, x, method="encode")
    assert z.shape == (3, *code)
    x_hat, aux = model.apply(v, x)
    assert aux["code_indices"].shape == (3, *code[:-1])
    np.testing.assert_array_equal(model.apply(v, z, method="decode")[0], x_hat)


def test_a_declared_codebook_size_must_be_an_integer_of_at_least_two():
    class Declares(models.Autoencoder):
        def codebook_size(self):
            return 1.5

    ae = models.build_model(tiny_config().model, (8, 8, 1))
    bad = Declares(ae.encoder, ae.decoder)
    with pytest.raises(ConfigError, match=r"declares codebook_size\(\)=1.5; it must be an"):
        interface.check(bad, "my_ext:bad")
