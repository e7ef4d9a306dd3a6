"""The zoo's harness beside pythae: the numpy readers and the JSON both sides write
(benchmarks/zoo_schema.py), the table's rows and its scorer hook (experiments/zoo_table.py),
aejax's epoch clock, overrides and pairs (experiments/zoo.py). pythae's own side
(benchmarks/zoo_peer.py) is tested only where PyTorch and pythae are installed."""

import gzip
import json
import math
import os
import struct
import sys

import numpy as np
import pytest

import zoo
import zoo_schema
import zoo_table
from aejax import config as config_lib
from aejax import losses
from aejax.data import sources
from aejax.errors import ConfigError

DATA = os.environ.get("AEJAX_DATA_DIR", "")


def _write_idx(path, array, gz=True):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_read_idx_round_trips_and_refuses_bad_files(tmp_path):
    a = (np.arange(2 * 3 * 5) * 7 % 256).reshape(2, 3, 5)
    for gz in (True, False):
        path = str(tmp_path / f"x{'.gz' if gz else ''}")
        _write_idx(path, a, gz)
        out = zoo_schema.read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 5) and (out == a).all()
    bad = tmp_path / "bad"
    bad.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">i", 2) + b"\0" * 8)  # floats
    with pytest.raises(ValueError, match="not an IDX file"):
        zoo_schema.read_idx(str(bad))
    short = tmp_path / "short"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + struct.pack(">i", 5) + b"\1\2")
    with pytest.raises(ValueError, match="header says"):
        zoo_schema.read_idx(str(short))


@pytest.mark.skipif(not os.path.isdir(os.path.join(DATA, "mnist")), reason="no MNIST files")
def test_read_idx_reads_mnist_as_aejax_does():
    path = os.path.join(DATA, "mnist", "t10k-labels-idx1-ubyte.gz")
    labels = zoo_schema.read_idx(path)
    # The per-class test counts of the data's README.
    expected = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert np.bincount(labels).tolist() == expected
    images = zoo_schema.read_idx(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"))
    reference = sources.read_idx(os.path.join(DATA, "mnist", "t10k-images-idx3-ubyte.gz"))
    assert images.shape == (10000, 28, 28)
    assert np.array_equal(images, np.asarray(reference).reshape(images.shape))


def test_read_amat_matches_aejax_reader(tmp_path):
    bits = np.random.default_rng(0).integers(0, 2, (3, 784))
    path = str(tmp_path / "b.amat.gz")
    with gzip.open(path, "wb") as f:
        f.write("".join(" ".join(map(str, r)) + "\n" for r in bits).encode())
    out = zoo_schema.read_amat(path)
    assert out.shape == (3, 784) and np.array_equal(out, bits)
    assert np.array_equal(out, sources.read_amat(path))
    (tmp_path / "cut.amat").write_bytes(b"0 1\n")
    with pytest.raises(ValueError, match="1568-byte lines"):
        zoo_schema.read_amat(str(tmp_path / "cut.amat"))


def test_result_has_every_key_in_order_and_refuses_unknown_ones(tmp_path, capsys):
    out = zoo_schema.result(model="vae", seconds_per_epoch=2.5, nll={"value": 90.0})
    assert tuple(out) == zoo_schema.KEYS
    assert out["model"] == "vae" and out["recon_mse_per_pixel"] is None
    with pytest.raises(ValueError, match="recon_mse"):
        zoo_schema.result(recon_mse=1.0)
    path = tmp_path / "r.json"
    zoo_schema.write(out, str(path))
    assert json.loads(path.read_text()) == out
    assert json.loads(capsys.readouterr().out)["nll"] == {"value": 90.0}


def _run(library, model, folder, **fields):
    base = dict(
        model=model,
        library=library,
        epochs=1,
        train_examples=60000,
        samples=f"{library}_{model}.npy",
        seconds_per_epoch=fields.pop("s", 10.0),
    )
    out = zoo_schema.result(**(base | fields))
    with open(os.path.join(folder, f"{library}_{model}.json"), "w") as f:
        json.dump(out, f)
    np.save(os.path.join(folder, out["samples"]), np.zeros((2, 784), np.float32))
    return out


def test_row_formats_each_pair_of_cells(tmp_path):
    nll = {"value": 95.123, "k": 1000, "test_images": 1000}
    _run("aejax", "vae", tmp_path, s=4.0, recon_mse_per_pixel=0.0123, nll=nll)
    _run("pythae", "vae", tmp_path, s=10.0, recon_mse_per_pixel=0.02, nll=dict(nll, value=96))
    _run("pythae", "svae", tmp_path, s=3.0)
    runs = zoo_table.load_runs(str(tmp_path))
    assert sorted(runs) == ["svae", "vae"] and sorted(runs["vae"]) == ["aejax", "pythae"]
    files = {os.path.join(str(tmp_path), f"{lib}_vae.npy") for lib in ("aejax", "pythae")}
    scores = {
        f: {"FD": 12.0 if "aejax" in f else 15.5, "precision": 0.8, "recall": 0.5} for f in files
    }
    assert zoo_table.row("vae", runs["vae"], scores) == (
        "| vae | 0.0123 / 0.02 | 12 / 15.5 | 0.8 / 0.8 | 0.5 / 0.5 | 95.12 / 96 | 4 / 10 | 2.5 |"
    )
    assert zoo_table.row("svae", runs["svae"], {}) == (
        "| svae | — / — | — / — | — / — | — / — | — / — | — / 3 | — |"
    )
    text = zoo_table.table(runs, scores)
    assert text.startswith(zoo_table.HEADER)
    assert "- vae, aejax: 1 epoch(s), 60000 training images; NLL k = 1000 on 1000" in text


def test_the_steady_time_is_the_table_time_when_given(tmp_path):
    _run("aejax", "wae", tmp_path, s=30.0, steady_seconds_per_epoch=6.0)
    _run("pythae", "wae", tmp_path, s=12.0, steady_seconds_per_epoch=12.0)
    runs = zoo_table.load_runs(str(tmp_path))
    assert zoo_table.row("wae", runs["wae"], {}).endswith("| 6 / 12 | 2 |")


def test_per_file_reads_the_scorers_layouts():
    files = ["/r/aejax_vae.npy", "/r/pythae_vae.npy"]
    a, b = {"FD": 1.0, "precision": 0.5, "recall": 0.25}, {"fd": 2.0, "Precision": 0.1}
    want = {files[0]: a, files[1]: {"FD": 2.0, "precision": 0.1, "recall": None}}
    assert zoo_table.per_file({files[0]: a, "pythae_vae.npy": b}, files) == want
    assert zoo_table.per_file({"results": {"aejax_vae.npy": a, files[1]: b}}, files) == want
    listed = [dict(a, samples=files[0]), dict(b, file="pythae_vae.npy")]
    assert zoo_table.per_file(listed, files) == want
    # experiments/zoo_score.py's layout: its reference row first, then one row per file.
    rows = [{"samples": "mnist train[:10000] (floor)", "n": 10000, "fd": 1.0}]
    rows += [dict(a, samples=files[0], n=10000), dict(b, samples=files[1], n=10000)]
    assert zoo_table.per_file({"classifier": {}, "k": 3, "rows": rows}, files) == want
    assert zoo_table.per_file({"other.npy": a}, files) == {}


def test_table_runs_the_scorer_once_over_every_sample_file(tmp_path):
    _run("aejax", "ae", tmp_path, s=2.0)
    _run("pythae", "ae", tmp_path, s=3.0)
    scorer = tmp_path / "scorer.py"
    scorer.write_text(
        "import json, os, sys\n"
        "args = dict(a[2:].split('=', 1) for a in sys.argv[1:])\n"
        "files = args['samples'].split(',')\n"
        "out = {os.path.basename(f): {'FD': i + 1.0, 'precision': 0.9, 'recall': 0.7}"
        " for i, f in enumerate(sorted(files))}\n"
        "json.dump(dict(out, classifier=args['classifier_dir']), open(args['json'], 'w'))\n"
    )
    command = f"{sys.executable} {scorer} --classifier_dir={{classifier_dir}} "
    command += "--samples={samples} --json={json}"
    out = tmp_path / "rows.md"
    argv = ["--dir", str(tmp_path), "--classifier_dir", "clf", "--scorer", command]
    zoo_table.main(argv + ["--write", str(out)])
    assert "| ae | — / — | 1 / 2 | 0.9 / 0.9 | 0.7 / 0.7 | — / — | 2 / 3 | 1.5 |" in out.read_text()
    with pytest.raises(SystemExit):  # FD needs a classifier, or --no_score
        zoo_table.main(["--dir", str(tmp_path)])


def test_epoch_clock_counts_training_windows_without_the_evaluations(monkeypatch):
    clock = zoo.EpochClock()
    times = iter([10.0, 12.0, 20.0, 21.0, 23.0])
    monkeypatch.setattr(zoo.time, "perf_counter", lambda: next(times))
    rows = [
        (50, {"train/steps_per_s": 5.0}),  # 10 s, compiling included
        (100, {"train/steps_per_s": 25.0}),  # 2 s: epoch 1 = 12 s
        (100, {"test/loss": 1.0}),  # the evaluation ended at t = 20
        (150, {"train/steps_per_s": 50 / 9}),  # 9 s since the last fetch, 1 after the eval
        (200, {"train/steps_per_s": 25.0}),  # 2 s: epoch 2 = 3 s
    ]
    for step, row in rows:
        clock(step, row)
    assert [round(s, 6) for s in clock.epoch_seconds(100)] == [12.0, 3.0]
    # Steady: 100 steps an epoch at the median rate (25, 50, 25 steps/s) of windows 2..4.
    assert math.isclose(clock.steady_seconds_per_epoch(100), 4.0)


def test_override_sets_typed_values_and_names_unknown_keys():
    config = config_lib.load_config("vae")
    zoo.apply_override(config, "model.encoder_widths=(512, 16)")
    zoo.apply_override(config, "loss=0.5*mse + kl_normal")
    assert tuple(config.model.encoder_widths) == (512, 16) and config.loss == "0.5*mse + kl_normal"
    with pytest.raises(ConfigError, match="no field 'model.encoder_width'"):
        zoo.apply_override(config, "model.encoder_width=3")
    with pytest.raises(ConfigError, match="no field 'modle.encoder_widths'"):
        zoo.apply_override(config, "modle.encoder_widths=(3,)")
    with pytest.raises(ConfigError, match="no field 'loss.x'"):
        zoo.apply_override(config, "loss.x=3")
    with pytest.raises(ConfigError, match="not key=value"):
        zoo.apply_override(config, "loss")


@pytest.mark.parametrize("name", sorted(zoo.PAIRS))
def test_each_pair_is_pythaes_setting(name):
    args = zoo.argparse.Namespace(
        config="", set=[], model=name, epochs=2, nll_epochs=0, data_dir="/data", seed=3
    )
    config = zoo.build_config(args)
    config_lib.validate(config)
    assert config.seed == 3  # --seed seeds the training, as the peer's seeds pythae's
    losses.parse_recipe(config.loss)
    assert (config.batch_size, config.optimizer.learning_rate) == (100, 1e-3)
    assert config.optimizer.schedule == "constant" and config.num_epochs == 2
    assert tuple(config.model.encoder_widths) == (512, 16) and config.data.data_dir == "/data"
    if zoo.PAIRS[name][2] is not None:
        binarized = zoo.build_config(args, binarized=True)
        assert binarized.data.source == "binarized_mnist" and binarized.seed == 3
        terms = losses.parse_recipe(binarized.loss)
        assert any(t.endswith("bce") for t in terms), binarized.loss
        assert "gaussian_nll" not in terms and "mse" not in terms
        assert binarized.model.get("likelihood", "bce") == "bce"


def _peer():
    """benchmarks/zoo_peer.py's tables (its module imports numpy only; torch lazily)."""
    import zoo_peer

    return zoo_peer


_TC = {"alpha": "mutual_information", "beta": "total_correlation", "gamma": "dimwise_kl"}


def _aejax_values(name: str, config) -> dict:
    """The pythae config values a pair's aejax config stands for (`zoo_peer.MODELS`' keys)."""
    terms = losses.parse_recipe(config.loss)
    m, opts = config.model, config.loss_options
    out = {"latent_dim": m.encoder_widths[-1]}
    if "gaussian_nll" in terms or terms.get("mse") == 0.5:  # ½‖x − x̂‖²: pythae's VAE "mse"
        out["reconstruction_loss"] = "mse"
    elif any(t.endswith("bce") for t in terms):
        out["reconstruction_loss"] = "bce"
    if name == "beta_vae":
        out["beta"] = terms["kl_normal"] / (2 * terms["mse"])  # pythae's: ½‖·‖² + β KL
    elif name == "iwae":
        out |= {"number_samples": m.num_samples, "beta": 1}
    elif name in ("miwae", "piwae"):
        groups = opts.miwae_bce.groups
        out |= {"number_gradient_estimates": groups, "number_samples": m.num_samples // groups}
    elif name == "ciwae":
        out |= {"number_samples": m.num_samples, "beta": opts.ciwae_bce.beta}
    elif name == "vamp":
        out["number_components"] = m.num_pseudo_inputs
    elif name == "vae_lin_nf":
        out["flows"] = [f.capitalize() for f in m.flows]
    elif name == "vae_iaf":
        widths = set(m.made_widths)
        out |= {"n_made_blocks": m.iaf_blocks, "n_hidden_in_made": len(m.made_widths)}
        out["hidden_size"] = widths.pop() if len(widths) == 1 else tuple(m.made_widths)
    elif name == "msssim_vae":
        out = {"latent_dim": out["latent_dim"], "window_size": opts.msssim.window_size}
        out["beta"] = terms["kl_normal"] / terms["msssim"]
    elif name in ("hvae", "rhvae"):
        out |= {"n_lf": m.n_lf, "eps_lf": m.eps_lf, "beta_zero": m.beta_zero}
        if name == "hvae":
            out |= {"learn_eps_lf": m.learn_eps_lf, "learn_beta_zero": m.learn_beta_zero}
        else:
            out |= {"temperature": m.metric_temperature}
            out["regularization"] = m.metric_regularization
    elif name == "vaegan":
        s = terms_of(config.extra_phases[0])["gan_decoder"]
        gate = opts.gan_decoder
        out |= {"adversarial_loss_scale": s, "margin": gate.margin}
        out |= {"equilibrium": gate.equilibrium, "reconstruction_layer": m.reconstruction_layer}
        out["reconstruction_loss"] = "mse"  # pythae's VAEGAN reads it not: its features' term
    elif name == "beta_tc_vae":
        out |= {t: terms[f"tc_{n}"] for t, n in _TC.items()}
    elif name == "disentangled_beta_vae":
        c = opts.kl_capacity_example
        assert c.stair_steps == 600 and c.anneal_steps % c.stair_steps == 0  # once an epoch
        args = zoo.argparse.Namespace(
            config="", set=[], model=name, epochs=1, nll_epochs=0, data_dir="", seed=0
        )
        binarized = zoo.build_config(args, binarized=True).loss_options.kl_capacity_example
        assert binarized.stair_steps == 500  # 50,000 binarized images in batches of 100
        assert binarized.anneal_steps == 26 * 500 and binarized.capacity_max == c.capacity_max
        out |= {"beta": terms["kl_capacity_example"], "C": c.capacity_max}
        out["warmup_epoch"] = c.anneal_steps // c.stair_steps - 1
    elif name == "factor_vae":
        # pythae's FactorVAEDiscriminator: 5 hidden layers of 1000 units
        assert tuple(m.discriminator_widths) == (1000,) * 5 and config.loss_params == "vae"
        assert [terms_of(p) for p in config.extra_phases] == [{"factor_discriminator": 1.0}]
        out["gamma"] = terms["factor_tc"]
    elif name == "aae":
        # pythae's Adversarial_AE: its default discriminator (latent-256-1, relu), a sampled
        # Gaussian posterior, recon + adversarial_loss_scale · BCE(D(z), 1) on the
        # autoencoder, then the discriminator's BCE
        assert m.aae_base == "vae" and config.loss_params == "autoencoder"
        assert (tuple(m.discriminator_widths), m.discriminator_activation) == ((256,), "relu")
        assert [terms_of(p) for p in config.extra_phases] == [{"adv_discriminator": 1.0}]
        assert config.extra_phases[0].endswith("@ discriminator")
        out["adversarial_loss_scale"] = terms["adv_generator"]
    return out


def terms_of(phase: str) -> dict[str, float]:
    """An extra phase's recipe ("recipe @ params") as {term: weight}."""
    return losses.parse_recipe(phase.partition("@")[0].strip())


NEW_PAIRS = (
    "beta_vae iwae miwae ciwae piwae vamp vae_lin_nf vae_iaf msssim_vae svae pvae hvae rhvae "
    "vaegan aae beta_tc_vae disentangled_beta_vae factor_vae".split()
)


@pytest.mark.parametrize("name", NEW_PAIRS)
def test_each_new_pair_has_pythaes_values_on_both_sides(name):
    """aejax's side of the pair sets what benchmarks/zoo_peer.py hands pythae, value by
    value (the Gaussian "mse" or Bernoulli likelihood, the bound's sample counts, the flows,
    the Hamiltonian and adversarial settings)."""
    peer = _peer()
    assert name in zoo.PAIRS and name in peer.MODELS
    args = zoo.argparse.Namespace(
        config="", set=[], model=name, epochs=1, nll_epochs=0, data_dir="", seed=0
    )
    config = zoo.build_config(args)
    values = dict(peer.MODELS[name][4])
    if name == "pvae":  # pythae's class defaults: curvature 1, diagonal σ, "mse"
        values["reconstruction_loss"] = "mse"
        assert (config.model.curvature, config.model.pvae_isotropic) == (1.0, False)
        assert config.model.pvae_decoder == "mlp"
    if name == "beta_tc_vae":
        # Not a value aejax sets: pythae's stratified matrix as released is minibatch-weighted
        # sampling, aejax's estimator, but for the batch's first example (docs/ZOO.md).
        assert values.pop("use_mss") is True
    got = _aejax_values(name, config)
    assert got == values, (got, values)


def test_the_pairs_and_the_peer_agree_on_which_models_have_a_likelihood():
    peer = _peer()
    assert set(zoo.PAIRS) <= set(peer.MODELS)
    for name, (_, _, binarized, _) in zoo.PAIRS.items():
        assert (binarized is not None) == (name in peer.LIKELIHOOD_MODELS), name


def test_peer_trains_and_samples_a_few_steps(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("pythae")
    import zoo_peer

    args = zoo_peer.argparse.Namespace(seed=0, lr=1e-3, batch=10)
    x = np.random.default_rng(0).uniform(size=(30, 1, 28, 28)).astype(np.float32)
    x[0, 0, 0, 0] = 1.0  # pythae's mixture sampler checks that the data reach 1
    for name in ("vae", "wae", "piwae", "vaegan"):  # the base, coupled, adversarial trainers
        model, seconds = zoo_peer.train(name, x, 1, args)
        assert len(seconds) == 1 and seconds[0] > 0
        assert zoo_peer.reconstruct(name, model, x).shape == (30, 784)
        samples = zoo_peer.sample(name, model, x, 7, 0)
        assert samples.shape == (7, 784) and samples.min() >= 0 and samples.max() <= 1


def test_pythae_is_an_optional_extra_never_a_requirement():
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    assert not any("pythae" in r or "torch" in r for r in project["dependencies"])
    assert "pythae==0.1.2" in project["optional-dependencies"]["zoo"]
    assert not any("pythae" in r for r in project["optional-dependencies"]["test"])
