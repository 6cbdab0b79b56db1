"""Keep TensorFlow's C++ start-up lines off the terminal of a ``bikeflow`` command.

Importing TensorFlow in the flow process (evaluation, the Keras preload) writes lines such as
"oneDNN custom operations are on", "Could not find cuda drivers", the CPU-feature notice and
"failed call to cuInit" straight to file descriptor 2, from C++, before ``TF_CPP_MIN_LOG_LEVEL``
is read (measured: they show at every level). The command therefore routes its own fd 2
through a pipe that drops those lines and passes everything else on, in order. Only the
console command does this (never library code, a worker or a test process). The training
child's stderr is captured apart, as before, and shown when it fails.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl's log line: severity letter, MMDD, time (seconds may be the epoch), thread id, file:line]
_TF_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-]+:\d+\] ")
# The error-level start-up lines of a machine without a GPU; other errors are kept.
_TF_NOISE_ERRORS = (b"failed call to cuInit", b"Unable to register cu")
_OTHER_NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",
)


def is_tensorflow_noise(line: bytes) -> bool:
    """True for TensorFlow's info/warning lines and its GPU-less start-up errors."""
    if line.startswith(_OTHER_NOISE):
        return True
    if not _TF_LINE.match(line):
        return False
    return line[:1] in (b"I", b"W") or any(text in line for text in _TF_NOISE_ERRORS)


def quiet_tensorflow_startup() -> None:
    """Route fd 2 through a filter for the rest of this process (unless logs are asked for)."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        return  # the user asked for every TensorFlow line
    # For the training child too; a value the user set is kept.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    terminal = os.dup(2)
    restore = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)

    def pump() -> None:
        with os.fdopen(read, "rb") as pipe, os.fdopen(terminal, "wb", buffering=0) as out:
            for line in pipe:
                if not is_tensorflow_noise(line):
                    out.write(line)

    thread = threading.Thread(target=pump, name="bikeflow-stderr", daemon=True)
    thread.start()

    def close() -> None:
        # Registered before Prefect is imported, so it runs after Prefect's exit handlers.
        sys.stderr.flush()
        os.dup2(restore, 2)  # closes the pipe's last writer here: the pump sees its end
        os.close(restore)
        thread.join(timeout=5)

    atexit.register(close)
