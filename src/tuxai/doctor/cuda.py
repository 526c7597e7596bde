"""CUDA toolkit → minimum NVIDIA Linux driver (x86_64).

From NVIDIA's CUDA release notes (Table 3) as summarised in
``shared/reference/cuda-driver-minimums.md``; re-check when a CUDA release is added.
"""

from __future__ import annotations

import re

# Minimum driver for the GA release of each CUDA minor version (full feature set).
RELEASE_MINIMUM = {
    (13, 2): "595.45.04",
    (13, 1): "590.44.01",
    (13, 0): "580.65.06",
    (12, 9): "575.51.03",
    (12, 8): "570.26",
    (12, 6): "560.28.03",
    (12, 5): "555.42.02",
    (12, 4): "550.54.14",
    (12, 3): "545.23.06",
    (12, 2): "535.54.03",
    (12, 1): "530.30.02",
    (12, 0): "525.60.13",
    (11, 8): "520.61.05",
    (11, 7): "515.43.04",
    (11, 6): "510.39.01",
    (11, 5): "495.29.05",
    (11, 4): "470.42.01",
    (11, 3): "465.19.01",
    (11, 2): "460.27.03",
    (11, 1): "455.23",
    (11, 0): "450.36.06",
}
# Minor-version compatibility: any build of the family runs (with fewer features) from here on.
FAMILY_MINIMUM = {11: "450.80.02", 12: "525.60.13", 13: "580"}


def version_tuple(text: str) -> tuple[int, ...]:
    """``"535.54.03"`` → ``(535, 54, 3)``; non-numeric parts end the tuple."""
    parts = []
    for part in re.split(r"[.\-+]", text.strip()):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def driver_requirement(cuda: str) -> tuple[str | None, str | None]:
    """The (family minimum, release minimum) drivers for a CUDA build like ``"12.8"``.

    Unknown newer minors of a known family fall back to the newest known release.
    """
    numbers = version_tuple(cuda)
    if len(numbers) < 2:
        return None, None
    major, minor = numbers[0], numbers[1]
    family = FAMILY_MINIMUM.get(major)
    release = RELEASE_MINIMUM.get((major, minor))
    if release is None:
        known = sorted(k for k in RELEASE_MINIMUM if k[0] == major and k[1] <= minor)
        release = RELEASE_MINIMUM[known[-1]] if known else None
    return family, release


def driver_at_least(driver: str, minimum: str) -> bool:
    """Whether driver version ``driver`` is ``minimum`` or newer."""
    return version_tuple(driver) >= version_tuple(minimum)
