import subprocess
import sys
from pathlib import Path


def test_the_training_child_imports_no_prefect_or_pandera():
    # What tasks.training.child imports before and while it trains (TensorFlow aside): Prefect
    # or pandera there would add seconds to every cold run's training child. A fresh
    # interpreter, so that nothing this test session imported counts.
    script = (
        "import sys\n"
        "import tasks.training.child, tasks.training.keras_fit, tasks.training.tf_core\n"
        "import tasks.training.request, tasks.training.job\n"
        "import tasks.prepare.statistics\n"
        "print(sorted(m for m in ('prefect', 'pandera', 'pandas') if m in sys.modules))\n"
    )
    project_root = Path(__file__).parents[3]
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=project_root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
