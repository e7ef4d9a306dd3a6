"""The results rows on tiny budgets of the real data: their baselines against independent
computations, their choices against their own validation scores, and the page."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

import anomaly_protocols
import results_rows
from aejax.errors import AejaxError, ConfigError
from aejax.evaluate import TrainedModel
from results_compute import VAE_PRESETS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTS = results_rows.Options(
    iwae_k=4,
    valid_k=3,
    tune_images=16,
    probe_c=(1.0, 0.01),
    classes=(0, 1),
    sets=("38_thyroid",),
    disentangle_points=20,
    disentangle_seeds=1,
)


def tiny(data_dir):
    """Shrinks every config a row loads to a few steps on a slice of the data."""

    def adjust(config):
        config.data.data_dir = data_dir
        config.data.max_train = 600
        config.batch_size = 32
        if config.data.source != "npz":  # ADBench's test rows are shuffled: keep them all
            config.data.max_test = 300
        config.num_steps = 12
        config.num_epochs = 0
        config.eval_every_steps = 12
        config.checkpoint_every_steps = 6
        config.log_every_steps = 6
        config.steps_per_dispatch = 1
        config.progress_bar = False
        # Hidden layers of at most 32 units (the code's size kept): the rows' networks of
        # 1000-3000 units would spend the test's minutes initializing and compiling.
        model = config.model
        if "encoder_widths" in model:
            *hidden, code = model.encoder_widths
            model.encoder_widths = (*(min(w, 32) for w in hidden), code)
        for name in ("discriminator_widths", "classifier_widths"):
            if name in model:
                setattr(model, name, tuple(min(w, 32) for w in getattr(model, name)))
        if config.data.source == "sprites":  # 64x64 images
            config.data.max_test = 64

    return adjust


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.environ.get("AEJAX_DATA_DIR", ""), os.path.join(here, "../../shared/data")):
        if path and os.path.isdir(os.path.join(path, "binarized_mnist")):
            data_dir = os.path.abspath(path)
            break
    else:
        pytest.skip("offline data (AEJAX_DATA_DIR with mnist/, binarized_mnist/) is not present")
    workdir = str(tmp_path_factory.mktemp("results"))
    # The deep autoencoder's row chooses among ten presets by validation error; three
    # (plain, noisy, mse) exercise the choice at a third of the cost.
    hinton = results_rows.ROWS["hinton"]
    presets = hinton.compute.keywords["presets"][:3]
    short = dataclasses.replace(
        hinton, compute=functools.partial(hinton.compute.func, presets=presets)
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(results_rows.ROWS, "hinton", short)
        out = {
            name: results_rows.run_row(name, workdir, tiny(data_dir), OPTS)
            for name in results_rows.ROWS
        }
    return workdir, out


def test_every_row_saves_its_result_and_judges_its_target(rows):
    workdir, out = rows
    for name, r in out.items():
        with open(os.path.join(workdir, name, "result.json")) as f:
            assert json.load(f) == json.loads(json.dumps(r)), name
        target, ours = r["target_value"], r["ours"]
        if target is None:
            assert r["met"] is None, name
        else:
            assert r["met"] == (
                ours >= target if results_rows.ROWS[name].higher_is_better else ours <= target
            )
        assert np.isfinite(ours), name
        assert all(run["steps"] > 0 and run["train_seconds"] > 0 for run in r["runs"]), name
    assert out["adbench"]["target_value"] == out["adbench"]["baselines"]["IsolationForest"]
    # The anomaly rows score the method whose settings were chosen on validation.
    for name, method in (
        ("one_class", anomaly_protocols.LP_NAME),
        ("adbench", anomaly_protocols.CHOSEN_NAME),
    ):
        with open(os.path.join(workdir, name, "anomaly.json")) as f:
            assert out[name]["ours"] == json.load(f)["mean"][method]["auroc"], name


def test_reconstruction_row_matches_scikit_learn_pca_and_the_model(rows):
    workdir, out = rows
    chosen = out["hinton"]["chosen"].partition(":")[2]  # the run with the best validation error
    m = TrainedModel.load(os.path.join(workdir, "hinton", chosen))
    ds = m.dataset
    train = ds.train_x.reshape(len(ds.train_x), -1).astype(np.float64)
    pca = SkPCA(30, svd_solver="full").fit(train)  # exact, not randomized
    test = ds.test_x.reshape(len(ds.test_x), -1).astype(np.float64)
    expected = np.mean(np.sum((pca.inverse_transform(pca.transform(test)) - test) ** 2, 1))
    np.testing.assert_allclose(out["hinton"]["baselines"]["PCA-30"], expected, rtol=1e-4)
    sq = m.per_example(ds.test_x)["sq_err_per_image"]
    np.testing.assert_allclose(out["hinton"]["ours"], sq.mean(), rtol=1e-4)


def test_probe_row_chooses_c_on_validation(rows):
    r = rows[1]["probe"]
    for name, ch in r["chosen"].items():
        assert set(ch["valid"]) == {"1.0", "0.01"}
        assert ch["valid"][str(ch["c"])] == max(ch["valid"].values()), name
    assert 0.1 < r["ours"] <= 1.0
    # PCA keeps min(code size, 784 pixels, 500 training images) components.
    assert [row[0] for row in r["table"]["rows"]][1:] == ["PCA codes (500)", "raw pixels (784)"]


def test_denoising_row_tunes_on_validation_and_scores_noise_by_hand(rows):
    r = rows[1]["denoising"]
    # Unclipped Gaussian noise of σ = 0.5 has a per-pixel MSE of 0.25: 6.02 dB.
    assert abs(r["baselines"]["noisy input"] - 10 * np.log10(4.0)) < 0.1
    for name, t in r["tuning"].items():
        assert str(t["chosen"]) == max(t["grid"], key=t["grid"].get), name
    classical = [v for k, v in r["baselines"].items() if k != "noisy input"]
    assert r["target_value"] == pytest.approx(max(classical) + 3.0)
    # Each tuned denoiser beats the noisy input by far.
    assert min(classical) > r["baselines"]["noisy input"] + 3.0


def test_vae_row_chooses_run_and_checkpoint_on_the_validation_bound(rows):
    workdir, out = rows
    r = out["vae"]
    s = r["splits"]["test"]
    # The IWAE bound is at least the ELBO in expectation (a loose check: the one-sample
    # ELBO of 300 images is noisy; the bound itself is tested in test_likelihood.py).
    assert s["nll_iwae"] <= s["neg_elbo"] + 0.5
    assert r["splits"]["valid"]["kl"] > 0
    valid = r["valid_by_run"]
    # Both presets, every saved checkpoint (steps 6 and 12 of the tiny budget).
    presets = [p.partition(":")[2] for p in VAE_PRESETS]
    assert sorted(valid) == sorted(f"{p}/{step}" for p in presets for step in (6, 12))
    chosen = f"{r['chosen'].partition(':')[2]}/{r['chosen_step']}"
    assert r["splits"]["valid"] == valid[chosen]
    assert valid[chosen]["nll_iwae"] == min(v["nll_iwae"] for v in valid.values())
    assert r["ours"] == s["nll_iwae"]
    # One table row per preset, at its best checkpoint; only the chosen one is tested.
    table = r["table"]["rows"]
    assert len(table) == len(presets)
    for row, p in zip(table, presets, strict=True):
        assert row[1] == min(v["nll_iwae"] for n, v in valid.items() if n.startswith(p + "/"))
        if "(chosen)" in row[0]:
            assert row[2] == r["ours"]
        else:
            assert row[2:] == ["–"] * 3
    assert sum("(chosen)" in row[0] for row in table) == 1
    # The chosen run's test bound, recomputed from its checkpoint.
    from aejax.likelihood import evaluate_bounds, get_likelihood

    m = TrainedModel.load(os.path.join(workdir, "vae", r["chosen"].partition(":")[2]))
    m = m.at_step(r["chosen_step"])
    cfg = m.exp.config
    b = evaluate_bounds(
        m.model,
        m.variables,
        m.dataset.test_x,
        jax.random.key(1),
        get_likelihood(cfg.loss, cfg.loss_options),
        k=OPTS.iwae_k,
    )
    np.testing.assert_allclose(r["ours"], -b["iwae"].mean(), rtol=1e-6)
    # The IWAE preset trains on its k-sample bound.
    iwae_run = TrainedModel.load(os.path.join(workdir, "vae", "vae_binarized_iwae"))
    assert iwae_run.exp.config.loss == "iwae_bce" and iwae_run.model.num_samples == 10


def test_page_lists_every_row_and_the_cli_writes_it(rows):
    workdir, out = rows
    page = results_rows.to_markdown(results_rows.load_results(workdir), {})
    for name, r in out.items():
        assert f'<a id="{name}"></a>' in page and r["title"] in page
        assert ("**missed**" in page) == any(x["met"] is False for x in out.values())
    path = os.path.join(workdir, "RESULTS.md")
    proc = subprocess.run(
        [sys.executable, "experiments/results.py", "--workdir", workdir, "--write", path],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    with open(path) as f:
        text = f.read()
    assert text.startswith("# Results") and page.splitlines()[2] in text
    assert "--rows hinton --workdir" in text


def test_write_keeps_the_rows_it_has_no_result_for(rows):
    """docs/RESULTS.md is rebuilt exactly from its own rows, and a page written from one
    saved row keeps every other row of the page before it, in ROWS order."""
    import results

    with open(os.path.join(ROOT, "docs", "RESULTS.md")) as f:
        published = f.read()
    kept = results_rows.kept_rows(published)
    assert results.HEADER + results_rows.to_markdown([], {}, kept) + results.FOOTER == published
    workdir, out = rows
    page = results_rows.to_markdown([out["probe"]], {}, kept)
    names = [n for n in results_rows.ROWS if f'<a id="{n}"></a>' in page]
    assert names == [n for n in results_rows.ROWS if n in kept or n == "probe"]
    assert kept["hinton"][1] in page and kept["probe"][1] not in page
    assert f"**{results_rows._fmt(out['probe']['ours'])}**" in page


def test_unknown_row_is_refused(tmp_path):
    with pytest.raises(AejaxError, match="unknown results row 'nope'; valid: hinton"):
        results_rows.run_row("nope", str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "experiments/results.py", "--workdir", str(tmp_path), "--rows", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "unknown row 'x'" in proc.stderr


def test_disentangle_models_must_be_known_and_hold_the_compared_pair(tmp_path):
    with pytest.raises(ConfigError, match="--disentangle_models=beta_tcvae,nope: give models"):
        results_rows.Options(disentangle_models=("beta_tcvae", "nope"))
    with pytest.raises(ConfigError, match="beta_tcvae and vae among them"):
        results_rows.Options(disentangle_models=("factor_vae", "vae"))
    kept = results_rows.Options(disentangle_models=("vae", "beta_tcvae"))
    assert kept.disentangle_models == ("vae", "beta_tcvae")
    proc = subprocess.run(
        [
            sys.executable,
            "experiments/results.py",
            "--workdir",
            str(tmp_path),
            "--rows",
            "disentanglement",
            "--disentangle_models",
            "vae",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--disentangle_models=vae: give models" in proc.stderr
    assert not os.listdir(tmp_path)  # refused before any row trains


def test_write_names_a_non_default_setting_in_the_rows_command():
    import results

    assert results._flag_value(("beta_tcvae", "vae")) == "beta_tcvae,vae"
    assert results._flag_value(["a"]) == results._flag_value(("a",)) == "a"
    assert results._flag_value(5000) == "5000"


def test_cluster_width_is_checked_and_sizes_every_hidden_layer():
    import app_cluster
    from aejax import config as config_lib

    with pytest.raises(ConfigError, match="--cluster_width"):
        results_rows.Options(cluster_width=0)
    seen = []
    config = config_lib.load_config(app_cluster.PRESETS[16])
    assert tuple(config.model.encoder_widths) == (3000, 3000, 5)  # the paper's
    app_cluster.sized(lambda c: seen.append(tuple(c.model.encoder_widths)), 512)(config)
    assert tuple(config.model.encoder_widths) == (512, 512, 5)  # the style code is kept
    assert tuple(config.model.discriminator_widths) == (512, 512)
    assert seen == [(512, 512, 5)]  # the row's own adjustment comes after
    # A run of another width never reuses the paper-width run's folder.
    assert app_cluster.run_name(16, 3000) == "aae16"
    assert app_cluster.run_name(16, 512) == "aae16_w512"
