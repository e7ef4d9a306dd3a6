"""The applications report: its numerical pieces against independent computations, and a
report of tiny trained runs whose every promised file exists and parses."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import tiny_config

from aejax import report
from aejax.errors import AejaxError
from aejax.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


def test_lerp_and_slerp_paths():
    rng = np.random.default_rng(0)
    z0, z1 = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    t = jnp.linspace(0.0, 1.0, 7)
    line = np.asarray(report.lerp(z0, z1, t))
    np.testing.assert_allclose(line[:, 3], (z0 + z1) / 2, rtol=1e-6)
    arc = np.asarray(report.slerp(z0, z1, t))
    np.testing.assert_allclose(arc[:, 0], z0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(arc[:, -1], z1, rtol=1e-5, atol=1e-6)
    # Between codes of equal norm the great circle keeps the norm, and its midpoint points
    # along z0 + z1.
    u = z1 / np.linalg.norm(z1, axis=1, keepdims=True) * np.linalg.norm(z0, axis=1, keepdims=True)
    arc = np.asarray(report.slerp(z0, u, t))
    np.testing.assert_allclose(
        np.linalg.norm(arc, axis=-1), np.linalg.norm(z0, axis=1)[:, None].repeat(7, 1), rtol=1e-5
    )
    mid = (z0 + u) / np.linalg.norm(z0 + u, axis=1, keepdims=True)
    np.testing.assert_allclose(arc[:, 3] / np.linalg.norm(arc[:, 3], axis=1)[:, None], mid, 1e-5)
    # Parallel codes fall back to the straight line.
    same = np.asarray(report.slerp(z0, 2 * z0, t))
    np.testing.assert_allclose(same, np.asarray(report.lerp(z0, 2 * z0, t)), rtol=1e-5)


def test_inpaint_with_a_projection_recovers_points_of_the_subspace():
    # Data on a line through 0 in 3-D; the "autoencoder" projects onto it. Alternating
    # projections (onto the line, onto the observed values) converge to the true point.
    u = np.array([0.6, 0.1, 0.8]) / np.linalg.norm([0.6, 0.1, 0.8])
    x = np.outer(np.array([1.0, -2.0, 0.5]), u).astype(np.float32)
    observed = np.array([[True, True, False], [True, False, True], [False, True, True]])
    project = lambda v: (v @ u)[:, None] * u[None]
    filled = np.asarray(report.inpaint(project, x, observed, jnp.zeros(3), 300))
    np.testing.assert_array_equal(filled[observed], x[observed])  # observed entries kept
    np.testing.assert_allclose(filled, x, atol=1e-4)
    # Zero steps: the missing entries hold the fill value.
    start = np.asarray(report.inpaint(project, x, observed, jnp.full(3, 7.0), 0))
    np.testing.assert_array_equal(start[~observed], 7.0)


def test_quantize_error_is_within_half_a_level():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(1000, 4)) * np.array([1.0, 10.0, 0.1, 0.0])
    low, high = codes.min(0), codes.max(0)
    q = report.quantize(codes, low, high, bits=8)
    span = np.where(high > low, high - low, 1.0)
    assert np.all(np.abs(q - codes) <= span / 255 / 2 + 1e-5)
    assert all(len(np.unique(q[:, j])) <= 256 for j in range(4))
    assert len(np.unique(report.quantize(codes, low, high, bits=2)[:, 0])) == 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny trained runs on the embedded digits: a plain AE, a one-class AE with a validation
    split, a VAE, and a VAE whose loss has no likelihood term."""
    root = tmp_path_factory.mktemp("runs")
    configs = {
        "ae": tiny_config(),
        "one_class": tiny_config(**{"data.train_classes": (0,), "data.valid_fraction": 0.2}),
        "vae": tiny_config(**{"model.name": "vae", "loss": "bce + kl_normal"}),
        "vae_mse": tiny_config(**{"model.name": "vae", "loss": "mse + kl_normal", "num_steps": 2}),
    }
    configs["one_class"].batch_size = 16
    for name, config in configs.items():
        train_and_evaluate(config, str(root / name))
    return root


def _check_files(out_dir, out):
    md = open(os.path.join(out_dir, "report.md")).read()
    assert json.load(open(os.path.join(out_dir, "report.json"))) == json.loads(json.dumps(out))
    linked = [line.split("](")[1][:-1] for line in md.splitlines() if line.startswith("![")]
    pngs = sorted(f for f in os.listdir(out_dir) if f.endswith(".png"))
    assert sorted(linked) == pngs  # every figure is linked, every link exists
    for f in pngs:
        assert open(os.path.join(out_dir, f), "rb").read(8) == PNG
    return md, pngs


def test_report_of_an_autoencoder(runs):
    out = report.write_report(str(runs / "ae"), tsne_points=100, inpaint_steps=5)
    md, pngs = _check_files(runs / "ae" / "report", out)
    assert set(out["sections"]) == set(report.SECTIONS)
    assert {"reconstruction.png", "latent_pca.png", "latent_tsne.png", "denoising.png"} <= set(pngs)
    assert {"denoising_psnr.png", "interpolation_linear.png", "inpainting.png"} <= set(pngs)
    # No prior: the generation section samples a Gaussian mixture fitted to training codes.
    assert "samples.png" not in pngs and "samples_gaussian_mixture.png" in pngs
    assert "The model has no prior" in md
    assert out["sections"]["generation"]["components"] == 10
    assert "holds no anomalies" in md
    rec = out["sections"]["reconstruction"]["methods"]
    assert set(rec) == {"autoencoder", "PCA (8 components)"}
    probes = out["sections"]["probe"]["features"]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in probes.values())
    assert probes["raw inputs (64)"]["test_accuracy"] > 0.9  # digits are linearly separable


def test_report_of_a_one_class_run_scores_anomalies(runs):
    out = report.write_report(str(runs / "one_class"), sections=("anomaly",))
    methods = out["sections"]["anomaly"]["methods"]
    for r in methods.values():
        assert 0.0 <= r["auroc"] <= 1.0 and "threshold" in r
    # Zeros are easy to tell from the other digits, even for a barely trained model's PCA.
    assert max(r["auroc"] for r in methods.values()) > 0.8
    _check_files(runs / "one_class" / "report", out)


def test_report_of_a_vae_has_samples_and_bounds(runs):
    out = report.write_report(str(runs / "vae"), sections=("generation", "interpolation"), iwae_k=8)
    _, pngs = _check_files(runs / "vae" / "report", out)
    assert {"samples.png", "interpolation_linear.png", "interpolation_great_circle.png"} == set(
        pngs
    )
    gen = out["sections"]["generation"]
    assert gen["iwae"] >= gen["elbo"] - 0.5  # k=8: at least about the ELBO


def test_report_of_a_vae_without_a_likelihood_term_keeps_its_samples(runs):
    out = report.write_report(str(runs / "vae_mse"), sections=("generation",))
    md, pngs = _check_files(runs / "vae_mse" / "report", out)
    assert pngs == ["samples.png"]
    assert "Likelihood bounds skipped" in md and "needs exactly one likelihood term" in md


def test_report_rejects_unknown_sections(runs):
    with pytest.raises(AejaxError, match="unknown report section.*latent_space"):
        report.write_report(str(runs / "ae"), sections=("latent_space",))


def test_evaluate_script_writes_the_report(runs, tmp_path):
    out_dir = tmp_path / "rep"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "experiments", "evaluate.py"),
            f"--workdir={runs / 'ae'}",
            f"--out_dir={out_dir}",
            "--sections=compression,probe",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "report/compression" in result.stdout and "wrote" in result.stdout
    sections = json.load(open(out_dir / "report.json"))["sections"]
    assert set(sections) == {"compression", "probe"}
    # Every ratio is the reference's bits over the row's: raw and gzip are 1 against themselves.
    rows = {r["representation"]: r for r in sections["compression"]["rows"]}
    raw, gz = rows["raw input"]["bits / example"], rows["gzip -9 of the test set"]["bits / example"]
    for r in rows.values():
        assert r["ratio vs raw"] == pytest.approx(raw / r["bits / example"])
        assert r["ratio vs gzip"] == pytest.approx(gz / r["bits / example"])


def test_notebook_entry_points_are_importable_from_the_package():
    import importlib

    import aejax

    for name, module in aejax._LAZY.items():
        assert getattr(aejax, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        aejax.nothing  # noqa: B018


def test_a_report_that_fails_half_way_leaves_the_old_one_whole(runs, monkeypatch):
    """The report is written beside its folder and swapped in when complete: a section that
    fails after others wrote their figures leaves the previous report as it was, and no
    partial folder."""
    workdir = str(runs / "ae")
    first = report.write_report(workdir, sections=("reconstruction",))
    folder = runs / "ae" / "report"
    before = {f: (folder / f).read_bytes() for f in os.listdir(folder)}

    def broken(m, opts):
        raise RuntimeError("a section failed")

    monkeypatch.setitem(report.SECTIONS, "compression", broken)
    with pytest.raises(RuntimeError, match="a section failed"):
        report.write_report(workdir, sections=("reconstruction", "latent_map", "compression"))
    assert {f: (folder / f).read_bytes() for f in os.listdir(folder)} == before
    assert json.loads((folder / "report.json").read_text())["sections"] == first["sections"]
    assert not [p for p in os.listdir(runs / "ae") if ".partial-" in p or ".previous-" in p]


def test_a_report_folder_must_be_new_empty_or_a_reports(runs, tmp_path):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("mine")
    with pytest.raises(AejaxError, match="holds other files"):
        report.write_report(str(runs / "ae"), str(mine), sections=("reconstruction",))
    assert os.listdir(mine) == ["chapter1.tex"]
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(AejaxError, match="exists and is not a folder"):
        report.write_report(str(runs / "ae"), str(a_file), sections=("reconstruction",))


def test_a_report_of_some_sections_updates_them_and_keeps_the_others(runs, tmp_path):
    workdir, out_dir = str(runs / "ae"), tmp_path / "rep"
    first = report.write_report(workdir, str(out_dir), sections=("reconstruction", "compression"))
    kept_png = (out_dir / "reconstruction.png").read_bytes()
    lines = []
    out = report.write_report(workdir, str(out_dir), sections=("probe",), log=lines.append)
    md, pngs = _check_files(out_dir, out)
    assert set(out["sections"]) == {"reconstruction", "probe", "compression"}
    assert out["sections"]["reconstruction"] == first["sections"]["reconstruction"]
    assert (out_dir / "reconstruction.png").read_bytes() == kept_png
    titles = [line for line in md.splitlines() if line.startswith("## ")]
    assert titles == [  # the usual order, whichever were recomputed
        "## Reconstruction and dimensionality reduction",
        "## Feature extraction: linear probes",
        "## Compression",
    ], titles
    assert lines[0] == "report/probe: computing (1 of 1)" and lines[1].startswith("report/probe ")
    # Recomputed with other options, a section's numbers are replaced.
    again = report.write_report(workdir, str(out_dir), sections=("probe",), probe_train=100)
    assert again["sections"]["probe"]["train_examples"] == 100
    assert again["sections"]["compression"] == first["sections"]["compression"]
    # A report of another checkpoint is not mixed with this one: it starts anew.
    other = report.write_report(
        workdir, str(out_dir), sections=("probe",), step=4, log=lines.append
    )
    assert set(other["sections"]) == {"probe"} and other["run"]["step"] == 4
    assert "another checkpoint" in lines[-3]
    _check_files(out_dir, other)


def test_a_probe_that_hits_its_iteration_cap_says_so(runs, monkeypatch):
    from aejax import metrics
    from aejax.evaluate import TrainedModel
    from aejax.report import base, encoding

    ds = TrainedModel.load(str(runs / "ae")).dataset
    args = (ds.train_x, ds.train_y, ds.test_x, ds.test_y)
    assert metrics.linear_probe(*args)["converged"]
    capped = metrics.linear_probe(*args, max_iter=3)
    assert capped["iterations"] == 3 and not capped["converged"]
    probe = metrics.linear_probe
    monkeypatch.setattr(metrics, "linear_probe", lambda *a, **k: probe(*a, max_iter=3))
    section = encoding.probe(TrainedModel.load(str(runs / "ae")), base.Options(out_dir=""))
    assert len(section.results["not_converged"]) == 3
    assert any(line.startswith("**Not converged**") for line in section.lines)
