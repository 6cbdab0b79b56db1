"""The forecaster's procedure as one plain Keras script on TensorFlow (no bikeflow, no Prefect).

Usage: python benchmarks/plain_scripts/forecaster.py DAY_CSV OUTPUT_DIR [--seed S] [--epochs E]

What ``bikeflow run --preset forecaster`` does, written the way one would by hand: the seed's
split (last 100 days = test, the 10% of days before them = validation); one-hot season, month,
weekday and weathersit; a 0/1 column per US federal holiday, 1 within 3 days of it, before the
weather columns; log(1 + cnt) as the target; mean/std of the training rows. The two-input
network (calendar and weather branches of 16 sigmoid units, joined, 16 -> 1), Adam at 0.001
decaying by 0.95 a epoch, batch 4, 60 epochs, for 3 members with seeds s, s+1000, s+2000 one
after the other. Each member's epoch count is chosen on validation loss, then the member is
trained again on training+validation rows for that many epochs; the published prediction is
the members' average in the normalised log space. Prints the test RMSE in bikes.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

RAW = [
    "season", "yr", "mnth", "holiday", "weekday", "workingday", "weathersit",
    "temp", "atemp", "hum", "windspeed",
]  # fmt: skip
ONE_HOT = {
    "season": range(1, 5),
    "mnth": range(1, 13),
    "weekday": range(7),
    "weathersit": range(1, 5),
}
WEATHER = ["temp", "atemp", "hum", "windspeed"]
WINDOW_DAYS = 3
MEMBERS = 3


def holiday_columns(dates: Any, train_dates: Any) -> Any:
    """One 0/1 column per US federal holiday that falls near a training day."""
    import numpy as np
    import pandas as pd
    from pandas.tseries.holiday import USFederalHolidayCalendar

    window = pd.Timedelta(days=WINDOW_DAYS)
    year = pd.Timedelta(days=366)
    columns = {}
    for rule in USFederalHolidayCalendar.rules:
        near_training = rule.dates(train_dates.min() - window, train_dates.max() + window)
        if len(near_training) == 0:
            continue
        days = rule.dates(dates.min() - year, dates.max() + year).values.astype("datetime64[D]")
        gaps = np.abs(dates.values.astype("datetime64[D]")[:, None] - days[None, :])
        columns[f"near:{rule.name}"] = gaps.min(axis=1) <= np.timedelta64(WINDOW_DAYS, "D")
    return pd.DataFrame(columns, index=dates.index).astype("float32")


def encode(frame: Any, train_rows: int) -> Any:
    """The forecaster's feature table: one-hot categories, holiday windows before the weather."""
    import pandas as pd

    parts = []
    for name in RAW:
        if name == WEATHER[0]:
            parts.append(holiday_columns(frame["dteday"], frame["dteday"].iloc[:train_rows]))
        if name in ONE_HOT:
            parts.append(
                pd.DataFrame({f"{name}={v}": (frame[name] == v) for v in ONE_HOT[name]}).astype(
                    "float32"
                )
            )
        else:
            parts.append(frame[[name]].astype("float32"))
    return pd.concat(parts, axis=1)


def build(calendar_width: int) -> Any:
    """The two-input network: calendar and weather branches, joined, 16 -> 1."""
    import keras
    from keras import layers

    calendar = keras.Input(shape=(calendar_width,), name="calendar")
    weather = keras.Input(shape=(len(WEATHER),), name="weather")
    joined = layers.Concatenate()(
        [
            layers.Dense(16, activation="sigmoid")(calendar),
            layers.Dense(16, activation="sigmoid")(weather),
        ]
    )
    hidden = layers.Dense(16, activation="sigmoid")(joined)
    return keras.Model([calendar, weather], layers.Dense(1)(hidden))


def fit(x: Any, y: Any, seed: int, epochs: int, validation: Any = None) -> tuple[Any, Any]:
    """Train one member from its seed; return the model and its history."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(seed)
    model = build(x.shape[1] - len(WEATHER))
    steps = int(np.ceil(len(x) / 4))
    schedule = keras.optimizers.schedules.ExponentialDecay(0.001, steps, 0.95)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss="mse")
    history = model.fit(
        split(x), y, batch_size=4, epochs=epochs, shuffle=True, verbose=0,
        validation_data=None if validation is None else (split(validation[0]), validation[1]),
    )  # fmt: skip
    return model, history.history


def split(x: Any) -> tuple[Any, Any]:
    """The two inputs: calendar columns, then the four weather columns."""
    return (x[:, : -len(WEATHER)], x[:, -len(WEATHER) :])


def main(argv: list[str] | None = None) -> float:
    """Train the members, refit, average; print and return the test RMSE in bikes."""
    import numpy as np
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("output")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    frame = pd.read_csv(args.source, parse_dates=["dteday"])
    test = 100
    validation = round((len(frame) - test) * 0.1)
    train = len(frame) - test - validation
    x = encode(frame, train).to_numpy(np.float64)
    y = np.log1p(frame[["cnt"]].to_numpy(np.float64))
    mean, std = x[:train].mean(0), x[:train].std(0)
    std[std == 0] = 1.0
    y_mean, y_std = y[:train].mean(), y[:train].std()
    x = ((x - mean) / std).astype(np.float32)
    y = ((y - y_mean) / y_std).astype(np.float32)
    seen = train + validation
    x_train, y_train, x_val, y_val = x[:train], y[:train], x[train:seen], y[train:seen]

    predictions = []
    for member in range(MEMBERS):
        seed = args.seed + 1000 * member
        _, history = fit(x_train, y_train, seed, args.epochs, (x_val, y_val))
        best = int(np.argmin(history["val_loss"])) + 1
        # The refit: the same seed, on training+validation rows, for the chosen epoch count.
        model, _ = fit(x[:seen], y[:seen], seed, best)
        model.save(out / f"member_{member}.keras")
        predictions.append(model.predict(split(x[seen:]), verbose=0).ravel())
        print(f"member {member} (seed {seed}): best epoch {best}")
    averaged = np.mean(predictions, axis=0)
    predicted = np.expm1(averaged * y_std + y_mean)
    actual = frame["cnt"].to_numpy(np.float64)[seen:]
    rmse = float(np.sqrt(np.mean((predicted - actual) ** 2)))
    print(f"test RMSE {rmse:.0f}")
    return rmse


if __name__ == "__main__":
    main()
