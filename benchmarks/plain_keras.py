"""The seed's workflow as one plain script: pandas + Keras, no Prefect (benchmark baseline).

Usage: python -m benchmarks.plain_keras DAY_CSV OUTPUT_DIR

Same data, split and config as ``bikeflow run`` with its defaults: last 100 days = test, the
10% of days before them = validation, mean/std of the training rows, the seed's MLP with SGD
+ momentum and the halving learning rate, batch 4, 15 epochs, a ``.keras`` checkpoint per
epoch, best epoch on validation loss, test RMSE, the prediction plot.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FEATURES = [
    "season", "yr", "mnth", "holiday", "weekday", "workingday", "weathersit",
    "temp", "atemp", "hum", "windspeed",
]  # fmt: skip


def main(source: str, output: str) -> float:
    """Train and evaluate; return the test RMSE in bikes."""
    import keras
    import matplotlib
    import numpy as np
    import pandas as pd
    from keras import layers

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(source, parse_dates=["dteday"])
    x = frame[FEATURES].to_numpy(np.float64)
    y = frame[["cnt"]].to_numpy(np.float64)
    test = 100
    validation = round((len(frame) - test) * 0.1)
    train = len(frame) - test - validation
    mean, std = x[:train].mean(0), x[:train].std(0)
    y_mean, y_std = y[:train].mean(), y[:train].std()
    x = ((x - mean) / std).astype(np.float32)
    y = ((y - y_mean) / y_std).astype(np.float32)
    x_train, y_train = x[:train], y[:train]
    x_val, y_val = x[train : train + validation], y[train : train + validation]
    x_test = x[train + validation :]

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(len(FEATURES),)),
            layers.Dense(16, activation="sigmoid"),
            layers.Dense(16, activation="sigmoid"),
            layers.Dense(1),
        ]
    )
    steps = int(np.ceil(train / 4))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.02, steps, 0.5)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=schedule, momentum=0.9),
        loss="mean_squared_error",
    )
    checkpoint = keras.callbacks.ModelCheckpoint(str(out / "epoch_{epoch:02d}.keras"))
    history = model.fit(
        x_train,
        y_train,
        batch_size=4,
        epochs=15,
        shuffle=True,
        validation_data=(x_val, y_val),
        callbacks=[checkpoint],
        verbose=0,
    )
    best = int(np.argmin(history.history["val_loss"])) + 1
    model = keras.saving.load_model(out / f"epoch_{best:02d}.keras")
    predicted = model.predict(x_test, verbose=0).ravel() * y_std + y_mean
    actual = y[train + validation :].ravel() * y_std + y_mean
    rmse = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    figure, axes = plt.subplots(figsize=(10, 4.5))
    axes.plot(frame["dteday"].iloc[train + validation :], actual, label="actual")
    axes.plot(frame["dteday"].iloc[train + validation :], predicted, label="predicted")
    axes.legend()
    figure.savefig(out / "predictions.png")
    print(f"best epoch {best}, test RMSE {rmse:.0f}")
    return rmse


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
