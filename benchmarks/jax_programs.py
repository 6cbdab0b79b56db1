"""The JAX trainer's compiled epoch program, timed on its own: µs per step and samples per second.

Shared by ``benchmarks/gpu_check.py`` and ``benchmarks/step_time.py``. Imports neither Prefect
nor TensorFlow (the accelerator machines carry only JAX): Keras must already run on JAX
(``KERAS_BACKEND=jax`` before anything imports it). The program is the trainer's own
(``tasks.training.jax_steps.make_epoch_program``: one ``jax.lax.scan`` over an epoch's batches,
``jax.vmap``-ed over members); what this module adds is only the set-up around it that
``tasks.training.jax_fit`` does too (models from the members' seeds, their state, each
member's row order), so the program can be timed without checkpoints or validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.config import ModelConfig, TrainingConfig

# The tutorial's data size: 631 days (the 731 less the 100 test days), 11 features.
TUTORIAL_ROWS = 631
TUTORIAL_FEATURES = 11
HOURLY_FEATURES = 12  # the hourly table has ``hr`` too


@dataclass(frozen=True)
class Arrays:
    """Synthetic training rows: features, target, and (with stations) each row's station index."""

    x: np.ndarray
    y: np.ndarray
    stations: np.ndarray | None = None
    station_rows: int = 0


def tutorial_arrays(rows: int = TUTORIAL_ROWS, seed: int = 0) -> Arrays:
    """Normalised-looking daily rows: 11 standard-normal features, a smooth target plus noise."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((rows, TUTORIAL_FEATURES)).astype(np.float32)
    signal = np.tanh(x[:, :3].sum(axis=1, keepdims=True)) + 0.5 * x[:, 7:8]
    y = (signal + 0.3 * generator.standard_normal((rows, 1))).astype(np.float32)
    return Arrays(x, y)


def station_arrays(stations: int, hours: int, seed: int = 0) -> Arrays:
    """Hourly rows of ``stations`` stations: 12 features, each row's station index (1..K)."""
    generator = np.random.default_rng(seed)
    rows = stations * hours
    x = generator.standard_normal((rows, HOURLY_FEATURES)).astype(np.float32)
    index = np.repeat(np.arange(1, stations + 1, dtype=np.int32), hours)
    level = generator.standard_normal(stations + 1).astype(np.float32)[index, None]
    y = (level + np.tanh(x[:, :2].sum(axis=1, keepdims=True))).astype(np.float32)
    # The embedding has one row per known station plus the unknown one (index 0).
    return Arrays(x, y, index.reshape(-1, 1), stations + 1)


@dataclass
class Program:
    """A compiled epoch program with its members' state and data, ready to be called."""

    call: Any
    state: Any
    x: Any
    y: Any
    stations: Any
    orders: list[np.ndarray]
    mask: Any
    steps: int
    members: int

    def epoch(self, epoch: int) -> Any:
        """Run one epoch (every member); return the row-weighted loss sum, computed."""
        order = self.orders[epoch % len(self.orders)]
        self.state, loss = self.call(self.state, order, self.mask, self.x, self.y, self.stations)
        return np.asarray(loss)


def build_program(
    arrays: Arrays,
    members: int,
    batch_size: int,
    model: ModelConfig | None = None,
    training: TrainingConfig | None = None,
    orders: int = 2,
) -> Program:
    """The trainer's epoch program for ``members`` seeds (0, 1000, ...) over ``arrays``.

    ``orders`` distinct epoch orders are prepared up front (shuffling is not timed).
    """
    import jax.numpy as jnp

    from tasks.models.zoo import build_model, input_blocks, make_optimizer
    from tasks.training.jax_steps import batch_grid, make_epoch_program, seed_keras
    from tasks.training.keras_fit import epoch_order

    model = model or ModelConfig()
    training = training or TrainingConfig(batch_size=batch_size)
    rows, features = arrays.x.shape
    positions, mask = batch_grid(rows, batch_size)
    steps = len(positions)
    models, optimizers = [], []
    for index in range(members):
        seed_keras(1000 * index)
        network = build_model(model, features, arrays.station_rows)
        optimizer = make_optimizer(training, steps)
        optimizer.build(network.trainable_variables)
        models.append(network)
        optimizers.append(optimizer)

    def stacked(values: list[list[Any]]) -> list[Any]:
        if members == 1:
            return [jnp.asarray(value) for value in values[0]]
        return [jnp.stack([jnp.asarray(v) for v in column]) for column in zip(*values, strict=True)]

    state = (
        stacked([[v.value for v in m.trainable_variables] for m in models]),
        stacked([[v.value for v in m.non_trainable_variables] for m in models]),
        stacked([[v.value for v in o.variables] for o in optimizers]),
    )
    member_orders = []
    for epoch in range(orders):
        per_member = [
            epoch_order(rows, 1000 * index, epoch)[positions].astype(np.int32)
            for index in range(members)
        ]
        member_orders.append(jnp.asarray(per_member[0] if members == 1 else np.stack(per_member)))
    blocks = input_blocks(model.architecture, features)
    call = make_epoch_program(models[0], optimizers[0], blocks, None if members == 1 else members)
    return Program(
        call=call,
        state=state,
        x=jnp.asarray(arrays.x),
        y=jnp.asarray(arrays.y),
        stations=None if arrays.stations is None else jnp.asarray(arrays.stations),
        orders=member_orders,
        mask=jnp.asarray(mask),
        steps=steps,
        members=members,
    )


def time_epochs(program: Program, epochs: int) -> dict[str, float]:
    """Compile (the first call), then time ``epochs`` calls; seconds, and µs per step."""
    started = time.perf_counter()
    program.epoch(0)
    compile_seconds = time.perf_counter() - started
    times = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        program.epoch(epoch)  # np.asarray of the loss waits for the device
        times.append(time.perf_counter() - started)
    # The median epoch: one slow epoch on a shared machine should not move the figure.
    seconds = float(np.median(times))
    return {
        "compile_seconds": compile_seconds,
        "epoch_seconds": seconds,
        "us_per_step": seconds / program.steps * 1e6,
        "steps_per_epoch": float(program.steps),
    }


def handwritten_program(
    arrays: Arrays, batch_size: int = 4, orders: int = 2, members: int = 1
) -> Program:
    """The tutorial's step written in plain JAX, no Keras: the floor this JAX version sets.

    The same 11-16-16-1 sigmoid MLP, mean squared error, SGD with momentum 0.9 and the rate
    halving every epoch, one ``jax.lax.scan`` over the epoch's batches; ``members`` > 1
    ``jax.vmap``-s the epoch over members' weights and row orders, as the trainer does. What
    the trainer's program (Keras's stateless API) costs above it is Keras's share of a step.
    """
    import jax
    import jax.numpy as jnp

    from tasks.training.jax_steps import batch_grid
    from tasks.training.keras_fit import epoch_order

    rows, features = arrays.x.shape
    positions, mask = batch_grid(rows, batch_size)
    steps = len(positions)
    sizes = [(features, 16), (16, 16), (16, 1)]

    def initial(seed: int) -> list[Any]:
        weights = []
        keys = jax.random.split(jax.random.PRNGKey(seed), 3)
        for key, (fan_in, fan_out) in zip(keys, sizes, strict=True):
            limit = float(np.sqrt(6.0 / (fan_in + fan_out)))
            weights += [jax.random.uniform(key, (fan_in, fan_out), minval=-limit, maxval=limit)]
            weights += [jnp.zeros(fan_out)]
        return weights

    def loss(params: list[Any], x: Any, y: Any, weight: Any) -> Any:
        hidden = jax.nn.sigmoid(x @ params[0] + params[1])
        hidden = jax.nn.sigmoid(hidden @ params[2] + params[3])
        errors = jnp.mean(jnp.square(hidden @ params[4] + params[5] - y), axis=-1)
        return jnp.sum(errors * weight) / jnp.sum(weight)

    gradient = jax.value_and_grad(loss)

    def epoch(state: Any, order: Any, mask: Any, x: Any, y: Any, stations: Any) -> Any:
        def step(carry: Any, batch: Any) -> Any:
            params, velocity, count = carry
            index, weight = batch
            value, grads = gradient(params, x[index], y[index], weight)
            rate = 0.01 * 0.5 ** (count / steps)
            velocity = [0.9 * v - rate * g for v, g in zip(velocity, grads, strict=True)]
            params = [p + v for p, v in zip(params, velocity, strict=True)]
            return (params, velocity, count + 1), value

        state, losses = jax.lax.scan(step, state, (order, mask))
        return state, jnp.sum(losses)

    def state_of(seed: int) -> Any:
        weights = initial(seed)
        return weights, [jnp.zeros_like(w) for w in weights], jnp.float32(0)

    def order_of(seed: int, epoch: int) -> np.ndarray:
        return epoch_order(rows, seed, epoch)[positions].astype(np.int32)

    seeds = [1000 * index for index in range(members)]
    if members == 1:
        state = state_of(0)
        member_orders = [jnp.asarray(order_of(0, e)) for e in range(orders)]
        call = jax.jit(epoch)
    else:
        state = jax.tree.map(lambda *leaves: jnp.stack(leaves), *map(state_of, seeds))
        member_orders = [
            jnp.asarray(np.stack([order_of(seed, e) for seed in seeds])) for e in range(orders)
        ]
        # Every member's state and order; one mask and the same data for all.
        call = jax.jit(jax.vmap(epoch, in_axes=(0, 0, None, None, None, None)))
    return Program(
        call=call,
        state=state,
        x=jnp.asarray(arrays.x),
        y=jnp.asarray(arrays.y),
        stations=None,
        orders=member_orders,
        mask=jnp.asarray(mask),
        steps=steps,
        members=members,
    )
