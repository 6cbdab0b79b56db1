"""The training child process: ``python -m tasks.training.child`` < request.json (a FitRequest).

TensorFlow holds GPU memory until its process exits, so each training runs in a process of
its own that exits when the training ends. Parent and child speak JSON lines, never pickle:
the request arrives on stdin; the child writes one event per line to its protocol stream
(``log``, ``epoch``, then ``result`` or ``error``). Anything else the child or TensorFlow
prints goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import IO, Any

from tasks.training.request import FitRequest, GroupFitRequest, read_request


def _emit(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def serve(request: FitRequest, protocol: IO[str]) -> None:
    """Run one training and report it as events on ``protocol``."""
    from tasks.training.retention import retain_checkpoints
    from tasks.training.tf_core import train_arrays

    def on_epoch(record: Any) -> None:
        _emit(protocol, "epoch", record=record.model_dump(), epochs=request.training.epochs)

    # tf-core trains by hand; every other zoo entry goes through Keras fit.
    job = request.job()
    run = train_arrays(
        job, log=lambda message: _emit(protocol, "log", message=message), on_epoch=on_epoch
    )
    # training.keep_checkpoints: the chosen epoch's and the last stay, the others go.
    run = retain_checkpoints(job, run)
    _emit(protocol, "result", run=run.model_dump(mode="json"))


def main() -> int:
    """Read a request from stdin, train, and exit (freeing every device the child used)."""
    # Keep the real stdout for the protocol and point fd 1 at stderr, so stray prints from
    # TensorFlow or user code land in the log rather than in the JSON stream.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        request = read_request(sys.stdin.read())
        if isinstance(request, GroupFitRequest):
            from tasks.training.group_child import serve_group

            # Several members as one program (JAX): each event names its member.
            serve_group(request, lambda event, **fields: _emit(protocol, event, **fields))
        else:
            serve(request, protocol)
    except Exception as error:
        from schemas.errors import BikeflowError

        _emit(
            protocol,
            "error",
            type=type(error).__name__,
            message=str(error),
            user_error=isinstance(error, BikeflowError | ValueError),
            traceback=traceback.format_exc(),
        )
        return 1
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: TensorFlow's takes about a second and has nothing left
    # to save (every file is written and renamed, the result is sent); the OS frees the
    # devices either way.
    os._exit(status)
