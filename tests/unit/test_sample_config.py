"""The committed sample config is what the code's options generate (docs match the code)."""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_sample_config_is_current():
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + ":" + os.environ["PATH"])
    result = subprocess.run(["bash", os.path.join(ROOT, "deploy", "gen-sample-config.sh"),
                             "--check"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
