"""Normalizing flows in the VAE posterior (planar, radial, IAF): each layer's closed-form
log|det J| against jacfwd, the planar flow's invertibility constraint, MADE's triangular
Jacobian, gradients, the flowed density against a grid integral (by inverting the flow) and
a Monte-Carlo identity, the likelihood bounds of a trained model, and bad settings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from aejax import config as config_lib
from aejax import likelihood as lk
from aejax import train
from aejax.errors import ConfigError
from aejax.models import build_model, flows
from aejax.models.flow_vae import FlowVAE

D = 5


def _log_dets(layer):
    """A jitted (params, zs [N, D], context [1, C] or None) -> (closed-form log|det J| [N],
    slogdet of jacfwd [N]) for a layer applied to one vector at a time."""

    def both(params, zs, context):
        extra = () if context is None else (context,)

        def f(z):
            out, log_det = layer.apply({"params": params}, z[None], *extra)
            return out[0], log_det[0]

        return jax.vmap(lambda z: f(z)[1])(zs), jax.vmap(jax.jacfwd(lambda z: f(z)[0]))(zs)

    jitted = jax.jit(both)

    def run(params, zs, context=None):
        got, jac = jitted(params, zs, context)
        return np.asarray(got), np.linalg.slogdet(np.asarray(jac, np.float64))[1]

    return run


def _init(layer, d=D, scale=1.0, seed=0, context=None):
    z = jnp.zeros((1, d))
    args = (z,) if context is None else (z, context)
    params = layer.init(jax.random.key(seed), *args)["params"]
    # Scale away from the initialization so that each layer bends space visibly.
    return jax.tree.map(lambda p: scale * p, params)


# --- closed-form log-determinants ------------------------------------------------------------


def test_linear_flow_log_det_matches_jacfwd():
    # A chain of both kinds; each radial flow's centre near the draws, where it bends most.
    chain = flows.LinearFlows(("planar", "radial", "planar", "radial"))
    zs = jnp.asarray(np.random.default_rng(0).normal(0.0, 2.0, size=(8, D)), jnp.float32)
    log_dets = _log_dets(chain)
    for seed in range(3):
        got, want = log_dets(_init(chain, seed=seed, scale=1.5), zs)
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)
    # Each kind alone (the chain's sum could hide two compensating errors).
    for kind in ("planar", "radial"):
        params = _init(chain, seed=3, scale=1.5)
        # The other kind's layers made volume-preserving: planar w = 0 (a translation),
        # radial β = −α + softplus(beta) = 0 (the identity).
        for name in params:
            if not name.startswith(kind):
                if name.startswith("planar"):
                    params[name] = {**params[name], "w": jnp.zeros(D)}
                else:
                    alpha = jnp.exp(params[name]["log_alpha"])
                    params[name] = {**params[name], "beta": jnp.log(jnp.expm1(alpha))}
        got, want = log_dets(params, zs)
        np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)
        assert np.max(np.abs(got)) > 0.1  # this kind bends space


def test_planar_constraint_holds_for_any_raw_parameters():
    """w·û = −1 + softplus(w·u) > −1, so 1 + tanh'(a)·w·û > 0 and f is invertible, whatever
    u and w are (including w·u far below −1, where the raw flow would fold space)."""
    rng = np.random.default_rng(1)
    ws, us, wus = [], [], []
    for scale in (1e-3, 1.0, 10.0, 100.0):
        for _ in range(40):
            w, u = rng.normal(0, scale, D), rng.normal(0, scale, D)
            if rng.random() < 0.5:  # make w·u strongly negative
                u = -w / np.dot(w, w) * rng.uniform(3, 60)
            ws.append(w), us.append(u), wus.append(np.dot(w, u))
    w, u = jnp.asarray(np.array(ws), jnp.float32), jnp.asarray(np.array(us), jnp.float32)
    u_hat = jax.vmap(flows.planar_u_hat)(u, w)
    # In float64 from the float32 û: w·û ≥ −1 up to rounding, and = −1 + softplus(w·u).
    w64, u_hat64 = np.asarray(w, np.float64), np.asarray(u_hat, np.float64)
    wu_hat = np.sum(w64 * u_hat64, -1)
    size = np.abs(np.sum(w64 * np.asarray(u, np.float64), -1)) + 1
    assert np.all(wu_hat >= -1 - 1e-6 * size), wu_hat.min()
    expect = -1 + np.logaddexp(0, np.array(wus))
    np.testing.assert_allclose(wu_hat, expect, atol=1e-5 * size.max())
    # û moves u only along w: the part of u orthogonal to w is kept.
    perp = lambda v: (
        v - np.sum(v * w64, -1, keepdims=True) / np.sum(w64**2, -1, keepdims=True) * w64
    )
    np.testing.assert_allclose(perp(u_hat64), perp(np.asarray(u, np.float64)), atol=1e-3)
    # The log-determinant is finite where w·û is within float32 rounding of −1, also at
    # tanh' = 1 (w·z + b = 0) as long as softplus(w·u) does not underflow (w·u > −87).
    z = jnp.asarray(rng.normal(0, 3, (len(ws), 4, D)), jnp.float32).at[:, 0].set(0.0)
    log_det = np.asarray(jax.vmap(lambda z, w, u: flows.planar(z, w, u, 0.0)[1])(z, w, u))
    assert np.all(np.isfinite(log_det[:, 1:]))
    representable = np.array(wus) > -80
    assert np.all(np.isfinite(log_det[representable, 0]))
    assert (np.array(wus) < -3).sum() > 50  # the bad regime was tested
    np.testing.assert_allclose(
        log_det[representable, 0], np.log(np.logaddexp(0, np.array(wus)[representable])), rtol=1e-4
    )
    # w = 0: a translation, log det 0, no division by zero.
    out, log_det = flows.planar(jnp.ones((3, D)), jnp.zeros(D), jnp.ones(D), jnp.float32(0.5))
    np.testing.assert_allclose(log_det, 0.0, atol=1e-7)
    np.testing.assert_allclose(out, 1 + np.tanh(0.5))


# --- MADE and IAF --------------------------------------------------------------------------


def test_made_masks_make_each_output_depend_on_earlier_inputs_only():
    for d, widths in [(5, (16, 16)), (4, (3,)), (6, (7, 2, 9)), (1, (4,))]:
        masks = flows.made_masks(d, widths)
        # Connectivity: paths[j, i] > 0 when a path joins input j to output i.
        paths = masks[0]
        for m in masks[1:]:
            paths = (paths @ m > 0).astype(np.float32)
        assert np.all(paths[np.tril_indices(d)] == 0), (d, widths)  # none for j >= i
        # ... and every connection they allow is there: output i sees inputs 0..i-1 (hidden
        # layers of at least D − 1 units hold every degree).
        if min(widths) >= d - 1:
            assert np.all(paths[np.triu_indices(d, 1)] == 1), (d, widths)
    made = flows.MADE((16, 16))
    params = _init(made, seed=2, scale=2.0)
    jac = jax.jit(jax.jacfwd(lambda z: jnp.concatenate(made.apply({"params": params}, z[None]))))
    for j in np.asarray(jac(jnp.linspace(-1.0, 1.0, D))):  # ∂m/∂z, ∂s/∂z: j[i, k] = ∂out_i/∂z_k
        assert np.all(j[np.triu_indices(D)] == 0)  # none for k >= i
        assert np.any(j[np.tril_indices(D, -1)] != 0)


def test_iaf_is_triangular_in_the_reversed_order_and_its_log_det_is_sum_log_sigma():
    rng = np.random.default_rng(3)
    h = jnp.asarray(rng.normal(size=(1, 3)), jnp.float32)  # with a context h(x)
    block = flows.IAF(1, (16, 16))
    params = _init(block, seed=4, scale=2.0, context=h)
    zs = jnp.asarray(rng.normal(0, 1.5, (6, D)), jnp.float32)
    apply = lambda z: block.apply({"params": params}, z[None], h)
    jac = np.asarray(jax.jit(jax.vmap(jax.jacfwd(lambda z: apply(z)[0][0])))(zs))
    log_det = np.asarray(jax.vmap(lambda z: apply(z)[1][0])(zs))
    # The block reverses the order first: in that order (columns reversed) it is lower
    # triangular with diagonal σ.
    permuted = jac[:, :, ::-1]
    above = np.triu(np.ones((D, D), bool), 1)
    assert np.all(permuted[:, above] == 0)
    made = flows.MADE((16, 16))
    hs = jnp.repeat(h, len(zs), 0)
    _, s = made.apply({"params": params["made_0"]}, zs[:, ::-1], hs)
    sigma = np.asarray(jax.nn.sigmoid(s + flows.IAF_GATE_OFFSET))
    np.testing.assert_allclose(np.diagonal(permuted, axis1=1, axis2=2), sigma, rtol=1e-5)
    np.testing.assert_allclose(log_det, np.sum(np.log(sigma), -1), rtol=1e-5)
    chain = flows.IAF(3, (8,))  # and a chain without one (pythae's)
    params = _init(chain, seed=5, scale=2.0)
    got, want = _log_dets(chain)(params, jnp.asarray(rng.normal(0, 1.5, (8, D)), jnp.float32))
    np.testing.assert_allclose(got, want, atol=2e-4, rtol=1e-4)


def test_iaf_update_is_stable_at_extreme_gates():
    z, m = jnp.full((1, 3), 2.0), jnp.full((1, 3), -1.0)
    out, log_det = flows.iaf_update(z, m, jnp.array([[-200.0, 0.0, 200.0]]))
    sig0 = jax.nn.sigmoid(2.0)
    np.testing.assert_allclose(out, [[-1.0, sig0 * 2.0 - (1 - sig0), 2.0]], rtol=1e-6)
    # log σ(−198) = −198 exactly in float32 (log(sigmoid) would give −inf).
    np.testing.assert_allclose(log_det, [-198.0 + float(jax.nn.log_sigmoid(2.0))], rtol=1e-6)


def test_flow_gradients():
    rng = np.random.default_rng(6)
    z = jnp.asarray(rng.normal(size=(3, 4)))
    w, u, b = (jnp.asarray(rng.normal(size=s)) for s in ((4,), (4,), ()))
    planar = jax.jit(lambda z, w, u, b: sum(jnp.sum(o) for o in flows.planar(z, w, u, b)))
    check_grads(planar, (z, w, u, b), order=1, modes=["rev"], rtol=1e-2)
    c, la, br = (jnp.asarray(rng.normal(size=s)) for s in ((4,), (), ()))
    radial = jax.jit(lambda z, c, la, br: sum(jnp.sum(o) for o in flows.radial(z, c, la, br)))
    check_grads(radial, (z, c, la, br), order=1, modes=["rev"], rtol=1e-2)
    iaf = flows.IAF(2, (8,))
    params = _init(iaf, d=4, seed=7)
    loss = jax.jit(lambda p, z: sum(jnp.sum(o) for o in iaf.apply({"params": p}, z)))
    check_grads(loss, (params, z), order=1, modes=["rev"], rtol=1e-2)


# --- the flowed density --------------------------------------------------------------------


def _bisect(g, lo, hi, iters=60):
    """The root of an increasing g between lo and hi, elementwise."""

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        below = g(mid) < 0
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iters, step, (lo, hi))
    return 0.5 * (lo + hi)


def _invert(flow, params, y, context):
    """f⁻¹(y) [N, D] for a LinearFlows or IAF chain, layer by layer from the last; written
    from each layer's formula, not from the library's log-determinants."""
    if isinstance(flow, flows.LinearFlows):
        for i, kind in reversed(list(enumerate(flow.names))):
            p = params[f"{kind}_{i}"]
            if kind == "planar":  # w·y = a + (w·û) tanh(a + b), a = w·z: solve for a
                u_hat = flows.planar_u_hat(p["u"], p["w"])
                wy, c = y @ p["w"], jnp.dot(p["w"], u_hat)
                g = lambda a, wy=wy, c=c, b=p["b"]: a + c * jnp.tanh(a + b) - wy
                a = _bisect(g, wy - abs(c) - 1, wy + abs(c) + 1)
                y = y - jnp.tanh(a + p["b"])[:, None] * u_hat
            else:  # ‖y − z0‖ = r (1 + β/(α + r)): solve for r
                alpha = jnp.exp(p["log_alpha"])
                beta = -alpha + jax.nn.softplus(p["beta"])
                ry = jnp.linalg.norm(y - p["z0"], axis=-1)
                g = lambda r, ry=ry, a=alpha, b=beta: r + b * r / (a + r) - ry
                r = _bisect(g, jnp.zeros_like(ry), ry + abs(beta) + 1)
                y = p["z0"] + (y - p["z0"]) / (1 + beta / (alpha + r))[:, None]
        return y
    for b in reversed(range(flow.blocks)):
        made = lambda z, b=b: flows.MADE(flow.widths).apply(
            {"params": params[f"made_{b}"]}, z, context
        )
        z = jnp.zeros_like(y)
        for i in range(y.shape[1]):  # z_i from y_i once z_0..z_{i−1} are known
            m, s = made(z)
            sig = jax.nn.sigmoid(s[:, i] + flows.IAF_GATE_OFFSET)
            z = z.at[:, i].set((y[:, i] - (1 - sig) * m[:, i]) / sig)
        y = z[:, ::-1]
    return y


def _flow_model(name, **fields):
    config = config_lib.load_config(f"{name}:digits")
    config.model.encoder_widths = (16, 2)  # a 2-D latent, to integrate on a grid
    for k, v in fields.items():
        config.model[k] = v
    return build_model(config.model, (8, 8, 1))


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("vae_nf", {"flows": ("planar", "radial", "planar", "radial")}),
        ("vae_iaf", {"iaf_blocks": 2, "made_widths": (8, 8), "iaf_context": 3}),
    ],
)
def test_flowed_density_integrates_to_one_and_matches_monte_carlo(name, fields):
    model = _flow_model(name, **fields)
    x = jnp.asarray(np.random.default_rng(8).uniform(size=(1, 8, 8, 1)), jnp.float32)
    variables = model.init({"params": jax.random.key(1), "latent": jax.random.key(2)}, x)
    params = variables["params"]
    if name == "vae_nf":  # by hand: planar folds near the limit, an expanding radial flow
        f32 = lambda *v: jnp.asarray(v if len(v) > 1 else v[0], jnp.float32)
        params["flow"] = {
            "planar_0": {"w": f32(2.0, -1.0), "u": f32(1.0, 0.0), "b": f32(0.5)},
            "radial_1": {"z0": f32(0.3, -0.2), "log_alpha": f32(np.log(0.5)), "beta": f32(1.2587)},
            "planar_2": {"w": f32(-0.5, 1.5), "u": f32(-1.0, 0.5), "b": f32(-0.3)},
            "radial_3": {"z0": f32(-0.5, 0.8), "log_alpha": f32(0.0), "beta": f32(-0.67)},
        }
    else:  # away from the identity (the log det varies from −1.3 to −0.4 over the draws)
        params["flow"] = jax.tree.map(lambda p: 1.5 * p, params["flow"])
    variables = {"params": params}
    mean, logvar, context = model.apply(variables, x, method="encode_base")
    keys = jax.random.split(jax.random.key(9), 10000)[None]
    z, log_q_s = jax.jit(model.apply, static_argnames="method")(
        variables, x, keys, method="posterior_samples"
    )
    z, log_q_s = z[0], log_q_s[0]

    # log q on a grid of z_K that holds the draws with a margin: invert the flow, then the
    # model's own log q of that z0.
    lo, hi = np.percentile(z, 0.01, axis=0), np.percentile(z, 99.99, axis=0)
    lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
    axes = [jnp.linspace(lo[i], hi[i], 301) for i in range(2)]
    grid = jnp.stack(jnp.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    n = grid.shape[0]
    rep = lambda a: None if a is None else jnp.repeat(a, n, 0)

    @jax.jit
    def grid_log_q(variables, grid):
        z0 = _invert(model.flow, variables["params"]["flow"], grid, rep(context))
        eps = (z0 - mean) / jnp.exp(0.5 * logvar)
        return model.apply(
            variables, rep(mean), rep(logvar), rep(context), eps, method=FlowVAE._flow_from_noise
        )

    z_k, log_q = grid_log_q(variables, grid)
    np.testing.assert_allclose(z_k, grid, atol=1e-4 * float(np.max(hi - lo)))  # exact inverse
    cell = float((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))
    integral = float(jnp.sum(jnp.exp(log_q)) * cell)
    assert abs(integral - 1.0) < 5e-3, integral

    # The grid density is the density of posterior_samples' draws: its moments are theirs.
    q = np.asarray(jnp.exp(log_q), np.float64) * cell
    g64, z64 = np.asarray(grid, np.float64), np.asarray(z, np.float64)
    for f in (
        lambda v: v[:, 0],
        lambda v: v[:, 1],
        lambda v: v[:, 0] * v[:, 1],
        lambda v: v[:, 0] ** 2,
    ):
        draws = f(z64)
        err = 4 * draws.std() / np.sqrt(len(draws))
        assert abs(np.sum(q * f(g64)) - draws.mean()) < err, (np.sum(q * f(g64)), draws.mean())
    # ... and so is the log q returned with them (the grid's, bilinearly interpolated).
    idx = [(z64[:, i] - lo[i]) / (hi[i] - lo[i]) * 300 for i in range(2)]
    log_q_grid = np.asarray(log_q).reshape(301, 301)
    i0, j0 = (np.floor(v).astype(int) for v in idx)
    fi, fj = idx[0] - i0, idx[1] - j0
    interp = sum(
        log_q_grid[i0 + a, j0 + b] * (fi if a else 1 - fi) * (fj if b else 1 - fj)
        for a in (0, 1)
        for b in (0, 1)
    )
    np.testing.assert_allclose(np.median(np.abs(interp - np.asarray(log_q_s))), 0.0, atol=1e-2)


# --- the models: training, bounds, configs -------------------------------------------------


def _short(config, steps=60):
    config.num_epochs, config.num_steps = 0, steps
    config.eval_every_steps = config.checkpoint_every_steps = steps
    config.log_every_steps = config.steps_per_dispatch = steps // 2
    config.eval_batch_size, config.progress_bar = 128, False
    config.data.max_test = 128
    return config


@pytest.mark.parametrize("preset", ["vae_nf:radial", "vae_iaf:context"])
def test_each_model_trains_and_its_iwae_bound_is_above_its_elbo(tmp_path, preset):
    config = _short(config_lib.load_config(preset))
    state, after = train.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 60
    # Well below 64·log 2 = 44.4 nats, the Bernoulli likelihood of a decoder that outputs
    # p = ½ everywhere (at initialization, with random logits, it is above that).
    assert after["test/bce"] < 0.8 * 64 * np.log(2), after
    assert np.isfinite(after["test/kl_sample"]) and after["test/kl_sample"] > 0
    exp = train.Experiment.from_config(config, str(tmp_path))
    model, variables = exp.model, {"params": state.params}
    assert not lk.analytic_kl(model)
    x = exp.dataset.test_x[:64]
    key = jax.random.key(0)
    bounds = lk.evaluate_bounds(model, variables, x, key, "bce", k=50, batch_size=64)
    np.testing.assert_allclose(bounds["elbo"], bounds["log_px_given_z"] - bounds["kl"], rtol=1e-5)
    # The test loss (one-sample −ELBO with the eval step's key) is the same quantity.
    assert abs(-bounds["elbo"].mean() - after["test/loss"]) < 0.1 * after["test/loss"]
    # Each example's IWAE bound is above its ELBO on average over the draws (Burda et al.'s
    # theorem 1), and strictly here (the flow's posterior is not the exact one); the ELBO
    # averaged over 16 draws, so that the gap stands out of the one-sample noise.
    elbo = np.mean(
        [lk.elbo(model, variables, x, jax.random.fold_in(key, r), "bce") for r in range(16)], 0
    )
    gap = bounds["iwae"] - elbo
    assert gap.mean() > 4 * gap.std() / np.sqrt(len(gap)), (gap.mean(), gap.std())


def test_mnist_presets_follow_pythae():
    for preset, fields in (
        ("vae_nf:mnist", {"flows": ("planar",) * 5}),
        ("vae_iaf:mnist", {"iaf_blocks": 2, "made_widths": (32, 32), "iaf_context": 0}),
    ):
        config = config_lib.load_config(preset)
        assert config.loss == "gaussian_nll + kl_sample"
        assert config.loss_options.gaussian_nll.variance == 1.0
        assert tuple(config.model.encoder_widths) == (512, 16)
        assert (config.batch_size, config.num_epochs) == (100, 100)
        assert (config.optimizer.schedule, config.optimizer.learning_rate) == ("constant", 1e-3)
        for k, v in fields.items():
            assert tuple(config.model[k]) == v if isinstance(v, tuple) else config.model[k] == v


@pytest.mark.parametrize(
    ("preset", "field", "value", "message"),
    [
        ("vae_nf", "flows", ("planar", "sylvester"), r"flows=.*'sylvester' is not a flow"),
        ("vae_nf", "flows", ("planar", 3), r"flows=\('planar', 3\): 3 is not a flow"),
        ("vae_nf", "num_samples", 4, r"num_samples=4: a flow VAE draws one z"),
        ("vae_iaf", "iaf_blocks", 0, r"iaf_blocks=0 must be an integer >= 1"),
        ("vae_iaf", "made_widths", (32, 0), r"made_widths=\(32, 0\) must be a non-empty list"),
        ("vae_iaf", "made_widths", (), r"made_widths=\(\) must be a non-empty list"),
        ("vae_iaf", "iaf_context", -1, r"iaf_context=-1 must be an integer >= 0"),
        ("vae_iaf", "code_activation", "tanh", r"a Gaussian latent takes no code activation"),
    ],
)
def test_bad_settings_are_refused_in_one_line(preset, field, value, message):
    config = config_lib.load_config(preset)
    config.model[field] = value
    with pytest.raises(ConfigError, match=message):
        build_model(config.model, (8, 8, 1))


def test_a_closed_form_kl_recipe_is_refused_on_a_flow_posterior(tmp_path):
    config = _short(config_lib.load_config("vae_nf"))
    config.loss = "bce + kl_normal"
    with pytest.raises(ConfigError, match="kl_normal.*needs mean"):
        train.Experiment.from_config(config, str(tmp_path))
