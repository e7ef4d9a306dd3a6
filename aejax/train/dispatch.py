"""How many steps one compiled call runs: a CPU fast path for convolutions.

Kept apart from the step: the step body reads the same whatever this decides.
"""

import jax
import jax.extend.core as jax_core
import jax.numpy as jnp


def _primitives(jaxpr) -> set[str]:
    """Names of every primitive in a jaxpr, nested ones included."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for sub in jax_core.jaxprs_in_params(eqn.params):
            names |= _primitives(sub)
    return names


def steps_per_dispatch(exp, requested: int, platform: str) -> tuple[int, bool]:
    """How many steps one compiled call runs, and whether they are unrolled.

    Normally `requested` (config.steps_per_dispatch) scanned steps. XLA:CPU runs a
    convolution inside a loop through a generic path about 20x slower than the Eigen
    kernels it uses at the top level (its pass that puts convolutions into the fast form
    visits top-level computations only: jax-ml/jax#12868, measured here on the conv AE's
    gradients). So on CPU a model with convolutions runs one unrolled step per call: the
    per-call overhead is tiny beside a conv step, and the data still stay on the device.

    Args:
      exp: an `Experiment` (its model and example shape are traced, nothing runs).
    Returns:
      (steps per call, unroll).
    """
    if platform != "cpu":
        return requested, False
    x = jax.ShapeDtypeStruct((2, *exp.dataset.example_shape), jnp.float32)
    variables = jax.eval_shape(exp.init_variables)
    apply = lambda v, x: exp.model.apply(v, x, train=False)
    if "conv_general_dilated" in _primitives(jax.make_jaxpr(apply)(variables, x).jaxpr):
        return 1, True
    return requested, False
