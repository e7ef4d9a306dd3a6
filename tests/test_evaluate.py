import numpy as np
import pytest

from aejax.evaluate import map_batches, reconstruction_metrics


def test_reconstruction_metrics_by_hand():
    x = np.array([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]], np.float32)
    x_hat = np.array([[0.5, 1.0, 1.0, 0.0], [0.9, 0.9, 0.9, 0.9]], np.float32)
    m = {k: np.asarray(v) for k, v in reconstruction_metrics(x, x_hat).items()}
    np.testing.assert_allclose(m["sq_err_per_image"], [0.25, 0.04], rtol=1e-5)
    np.testing.assert_allclose(m["mse_per_pixel"], [0.0625, 0.01], rtol=1e-5)
    np.testing.assert_allclose(m["psnr"], [10 * np.log10(16), 20.0], rtol=1e-5)
    # BCE per pixel: first image -log(0.5)/4 plus clipped perfect pixels; second -log(0.9).
    np.testing.assert_allclose(m["bce_per_pixel"][1], -np.log(0.9), rtol=1e-5)
    np.testing.assert_allclose(m["bce_per_pixel"][0], np.log(2) / 4, rtol=1e-4)


def test_reconstruction_metrics_of_images_match_flat():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    x_hat = rng.uniform(size=(3, 4, 4, 1)).astype(np.float32)
    images = reconstruction_metrics(x, x_hat)
    flat = reconstruction_metrics(x.reshape(3, -1), x_hat.reshape(3, -1))
    for k in images:
        np.testing.assert_allclose(images[k], flat[k], rtol=1e-6)
    np.testing.assert_allclose(
        images["sq_err_per_image"], ((x - x_hat) ** 2).sum((1, 2, 3)), rtol=1e-5
    )


@pytest.mark.parametrize("n", [1, 7, 8, 9, 20])
def test_map_batches_pads_and_drops_the_padding(n):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return {"s": batch.sum(axis=1)}

    out = map_batches(fn, x, batch_size=8)
    np.testing.assert_array_equal(out["s"], x.sum(axis=1))
    assert set(calls) == {(8, 2)}  # one shape: compiled once


def test_map_batches_without_padding_for_batch_level_outputs():
    x = np.arange(6, dtype=np.float32)
    batch_mean = lambda b: {"m": np.broadcast_to(b.mean(), b.shape)}
    out = map_batches(batch_mean, x, batch_size=4, pad=False)
    np.testing.assert_array_equal(out["m"], [1.5, 1.5, 1.5, 1.5, 4.5, 4.5])
    padded = map_batches(batch_mean, x, batch_size=4)  # [4, 5, 5, 5]: the mean shifts
    assert padded["m"][-1] == 4.75
