"""Which stderr lines the ``bikeflow`` command drops: TensorFlow's start-up noise only."""

from __future__ import annotations

import pytest

from flows.cli.quiet import is_tensorflow_noise

NEEDS_PREFECT = False  # pure byte checks

# Lines as TensorFlow 2.21 writes them on a machine without a GPU (absl's format).
NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    b"I0000 00:00:1796160460.148937   10160 port.cc:153] oneDNN custom operations are on.\n",
    b"I0000 00:00:1796160460.170032   10160 cudart_stub.cc:31] Could not find cuda drivers\n",
    b"I0000 00:00:1796159161.923717   23620 cpu_feature_guard.cc:227] This TensorFlow binary\n",
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow\n",
    b"E0000 00:00:1796159492.805473   26277 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n",
    b"W0101 12:00:01.123456    77 gpu_device.cc:2344] Cannot dlopen some GPU libraries.\n",
]
KEPT = [
    b"21:28:19.107 | INFO    | Task run 'train_model-382' - epoch 1/1: loss=1.2909\n",
    b"bikeflow: retraining failed: day.csv failed validation with 1 problem(s)\n",
    b"E0000 00:00:1796159492.805473   26277 kernel.cc:12] OOM when allocating tensor\n",
    b"F0000 00:00:1796159492.805473   26277 check.cc:9] Check failed: ok\n",
    b"Traceback (most recent call last):\n",
    b"I0000 is how a test id could start, but not an absl line\n",
]


@pytest.mark.parametrize("line", NOISE)
def test_tensorflow_start_up_lines_are_dropped(line: bytes):
    assert is_tensorflow_noise(line)


@pytest.mark.parametrize("line", KEPT)
def test_everything_else_is_kept_including_real_tensorflow_errors(line: bytes):
    assert not is_tensorflow_noise(line)
