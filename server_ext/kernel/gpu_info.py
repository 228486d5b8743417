"""The GPU a kernel runs on, as the NVIDIA driver names it (through nvidia-ml-py, if installed).

Used for the ``mlteams.gpu_type`` run tag when the profile does not pin a GPU product with its
node selector. Asked once per kernel; any failure (no library, no driver, no GPU) means "unknown".
"""

from __future__ import annotations

from functools import cache
from typing import Any


def nvml_gpu_name(nvml: Any) -> str:
    """The name of device 0 through an NVML binding module; ``""`` when it cannot be read."""
    try:
        nvml.nvmlInit()
    except Exception:
        return ""
    try:
        name = nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(0))
    except Exception:
        return ""
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return (name.decode() if isinstance(name, bytes) else str(name)).strip()


@cache
def detected_gpu_type() -> str:
    """The first GPU's product name, or ``""`` without nvidia-ml-py or a usable GPU."""
    try:
        import pynvml
    except ImportError:
        return ""
    return nvml_gpu_name(pynvml)
