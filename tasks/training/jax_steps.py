"""The JAX trainer's compiled programs: an epoch's steps as one ``jax.lax.scan``, and validation.

Built on Keras 3's stateless API (``model.stateless_call``, ``optimizer.stateless_apply``), so
the zoo's Keras models train unchanged. A program takes the state as three lists of arrays
(trainable, non-trainable, optimizer variables); with ``members`` it is ``jax.vmap``-ed over a
leading member axis of the state and of the batch orders. Needs Keras on the JAX backend.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.models.zoo import pack_inputs

if TYPE_CHECKING:
    import keras

# (trainable, non-trainable, optimizer variables), each a list of arrays.
State = tuple[list[Any], list[Any], list[Any]]
SEED_STATE = "seed_generator_state"


def seed_keras(seed: int) -> None:
    """What ``keras.utils.set_random_seed`` does on JAX, without importing TensorFlow.

    Keras seeds TensorFlow too whenever it is installed, and importing it costs the training
    child seconds; the zoo's initialisers draw their seeds from Python's ``random``.
    """
    try:
        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
    except ImportError:  # another Keras layout: its public function, TensorFlow and all
        import keras

        keras.utils.set_random_seed(seed)
        return
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def keep_tensorflow_unloaded() -> None:
    """Tell Keras that TensorFlow is absent, unless something has imported it already.

    Saving a ``.keras`` file on JAX imports TensorFlow whenever it is installed, only to ask
    whether a value is a ``tf.TensorShape`` (none is, here): seconds of every JAX child's
    start-up. Keras's own lazy-import flag is set to "absent", as on a JAX-only machine.
    """
    import sys

    if "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils.module_utils import tensorflow
    except ImportError:
        return
    tensorflow._available = False


def seed_state_positions(model: keras.Model) -> list[int]:
    """Where the dropout layers' RNG states are among the model's non-trainable variables."""
    return [
        index
        for index, variable in enumerate(model.non_trainable_variables)
        if variable.path.endswith(SEED_STATE)
    ]


def epoch_seed_states(seed: int, epoch: int, count: int) -> np.ndarray:
    """The dropout RNG states an epoch starts from: a function of (seed, epoch) only.

    So a resumed training draws the very masks the uninterrupted one drew (the state a
    checkpoint holds is not needed). Keras's state is (key, counter): each draw bumps the
    counter, and each layer gets its own key.
    """
    keys = np.random.default_rng([seed, epoch]).integers(0, 2**32, size=count, dtype=np.uint64)
    return np.stack([keys, np.zeros(count, np.uint64)], axis=1).astype(np.uint32)


def batch_grid(rows: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions 0..rows-1 as a (steps, batch) grid, the last batch padded, and its row mask.

    Padded positions point at row 0 and weigh 0, so a partial last batch's loss is the mean
    over its real rows, as Keras computes it.
    """
    steps = -(-rows // batch_size)
    positions = np.zeros(steps * batch_size, np.int32)
    positions[:rows] = np.arange(rows, dtype=np.int32)
    mask = np.zeros(steps * batch_size, np.float32)
    mask[:rows] = 1.0
    return positions.reshape(steps, batch_size), mask.reshape(steps, batch_size)


def _squared_errors(predictions: Any, targets: Any) -> Any:
    import jax.numpy as jnp

    # Keras's mean_squared_error: the mean over the output columns, per row.
    return jnp.mean(jnp.square(predictions - targets), axis=-1)


def make_epoch_program(
    model: keras.Model,
    optimizer: keras.Optimizer,
    blocks: Sequence[tuple[str, int, int]],
    members: int | None,
    shared_data: bool = True,
) -> Callable[..., tuple[State, Any]]:
    """Compile ``(state, order, mask, x, y, stations) -> (state, row-weighted loss sum)``.

    ``order`` (steps, batch) indexes the rows of ``x``/``y``/``stations``; ``mask`` (steps,
    batch) weighs them (0: padding). With ``members``, state and order get a leading member
    axis, and so do the data unless ``shared_data`` (every member reads the same arrays).
    """
    import jax
    import jax.numpy as jnp

    def loss_and_updates(
        trainable: list[Any], non_trainable: list[Any], inputs: Any, targets: Any, weights: Any
    ) -> tuple[Any, list[Any]]:
        predictions, non_trainable = model.stateless_call(
            trainable, non_trainable, inputs, training=True
        )
        errors = _squared_errors(predictions, targets)
        return jnp.sum(errors * weights) / jnp.sum(weights), non_trainable

    gradient = jax.value_and_grad(loss_and_updates, has_aux=True)

    def epoch(
        state: State, order: Any, mask: Any, x: Any, y: Any, stations: Any
    ) -> tuple[State, Any]:
        def step(carry: State, batch: tuple[Any, Any]) -> tuple[State, Any]:
            trainable, non_trainable, optimizer_variables = carry
            index, weights = batch
            inputs = pack_inputs(x[index], blocks, None if stations is None else stations[index])
            (loss, non_trainable), grads = gradient(
                trainable, non_trainable, inputs, y[index], weights
            )
            trainable, optimizer_variables = optimizer.stateless_apply(
                optimizer_variables, grads, trainable
            )
            return (trainable, non_trainable, optimizer_variables), loss * jnp.sum(weights)

        state, weighted = jax.lax.scan(step, state, (order, mask))
        return state, jnp.sum(weighted)

    if members is None:
        return jax.jit(epoch)
    data_axis = None if shared_data else 0
    return jax.jit(jax.vmap(epoch, in_axes=(0, 0, None, data_axis, data_axis, data_axis)))


def make_validation_program(
    model: keras.Model, blocks: Sequence[tuple[str, int, int]], members: int | None
) -> Callable[..., Any]:
    """Compile ``(trainable, non_trainable, x, y, stations, mask) -> sum of squared errors``."""
    import jax
    import jax.numpy as jnp

    def squared_error_sum(
        trainable: list[Any], non_trainable: list[Any], x: Any, y: Any, stations: Any, mask: Any
    ) -> Any:
        predictions, _ = model.stateless_call(
            trainable, non_trainable, pack_inputs(x, blocks, stations), training=False
        )
        return jnp.sum(_squared_errors(predictions, y) * mask)

    if members is None:
        return jax.jit(squared_error_sum)
    return jax.jit(jax.vmap(squared_error_sum, in_axes=(0, 0, None, None, None, None)))
