"""commpress.keep_freed_memory: glibc settings for the package's own processes, with an opt-out."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = "import commpress as cp; print(cp.keep_freed_memory(), cp.keep_freed_memory())"


def _run(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "COMMPRESS_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["COMMPRESS_KEEP_FREED_MEMORY"] = env_value
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_it_takes_effect_on_linux_glibc_and_is_idempotent():
    expected = "True True" if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") else None
    out = _run(None)
    if expected is not None:
        assert out == expected
    else:  # elsewhere it does nothing and says so
        assert out == "False False"


def test_the_environment_turns_it_off():
    assert _run("0") == "False False"


def test_the_library_does_not_call_it_on_import():
    probe = "import commpress, commpress._malloc as m; print(m._done)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"  # importing the package leaves the allocator alone


def test_empty_is_torch_empty_with_cheap_pages_for_large_cpu_tensors():
    import torch

    from commpress._malloc import empty

    for shape, dtype in (((3, 4), torch.float32), ((1 << 20, 2), torch.float64), ((1 << 22,), torch.int64),
                         ((5, 1 << 20), torch.bool)):
        t = empty(shape, dtype, "cpu")
        assert t.shape == shape and t.dtype == dtype and t.device.type == "cpu" and t.is_contiguous()
        t.zero_()  # writable
    assert empty((2, 2), torch.complex64, "cpu").dtype == torch.complex64  # no NumPy twin: torch.empty
