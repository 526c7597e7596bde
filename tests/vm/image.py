"""The VM tier's guest: Debian 12 with systemd, a kernel and tuxai's dependencies, built once and cached.

``mmdebstrap`` builds the root file system from Debian's packages; a hook makes the venv
``/opt/tuxai`` with the guest's own Python (3.11.2) from wheels built on the host; ``mkfs.ext4 -d``
copies it into a disk image (no mount needed). The guest boots straight into the oneshot unit
``tuxai-vm-run.service``, which runs ``run.sh`` from the second disk and powers off. tuxai itself
is not in the image: the second disk carries the current source tree at every run
(``tuxai-under-test.pth`` puts it on the venv's path). Reference:
``../shared/reference/systemd-cgroup2-vm.md`` (what was measured to work on this machine).

Cached under ``$XDG_CACHE_HOME/tuxai-vm`` (``~/.cache/tuxai-vm``): ``wheels-<key>/`` (key: tuxai's
runtime requirements) and ``image-<key>/`` (key: the Debian packages, the wheel set, the code here
that shapes the image and the guest's unit), each made in a temporary directory and renamed when
complete, under a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUEST = Path(__file__).resolve().parent / "guest"
SUITE = "bookworm"
PACKAGES = (
    "systemd-sysv",
    "dbus",
    "linux-image-cloud-amd64",  # pulls initramfs-tools and udev (for the initrd; masked once booted)
    "python3",
    "python3-venv",
    "procps",
)
DATA_MOUNT = "/mnt/tuxai-vm"  # where the second disk is mounted in the guest
VENV = "/opt/tuxai"
ROOT_SIZE = "3G"  # sparse: the files take ~0.6 GB
# Units that would only compete with the scenarios for the guest's two slow CPUs. udev among
# them: nothing here needs it, and under TCG on a busy host it took over 90 s to announce the
# second disk, which systemd waited for (the device unit of the disk run.sh had mounted).
MASKED = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "fstrim.timer",
    "serial-getty@ttyS0.service",
    "systemd-udevd.service",
    "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket",
    "systemd-udev-trigger.service",
)


class ImageError(Exception):
    """The guest image could not be built: the message says which step and why."""


@dataclass(frozen=True)
class Image:
    """A built guest: kernel, initrd and root disk (booted with ``snapshot=on``: never changed)."""

    directory: Path
    kernel: Path
    initrd: Path
    root: Path
    build_s: float  # 0 when it came from the cache


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/tuxai-vm``, else ``~/.cache/tuxai-vm``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuxai-vm"


def requirements() -> list[str]:
    """tuxai's runtime requirements, as pyproject.toml declares them."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"])


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _run(step: str, argv: list[str], timeout_s: float, log: Path) -> None:
    """Run one build step, its output appended to ``log``. Raises ``ImageError`` with the log's tail."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        started = time.monotonic()
        try:
            done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise ImageError(f"{step}: {argv[0]} is not installed (run `make vm-deps` as root)") from None
        except subprocess.TimeoutExpired:
            raise ImageError(f"{step}: still running after {timeout_s:g} s (log: {log})") from None
        out.write(f"({step}: {time.monotonic() - started:.1f} s)\n".encode())
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise ImageError(f"{step} failed with exit status {done.returncode} (log: {log}):\n{tail}")


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One builder at a time (two test runs on this machine share the cache)."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _wheels(cache: Path, log: Path) -> Path:
    """The wheelhouse of tuxai's runtime requirements (built with the host's pip: same CPython 3.11, glibc)."""
    wanted = requirements()
    final = cache / f"wheels-{_digest(*wanted)}"
    if final.is_dir():
        return final
    work = Path(tempfile.mkdtemp(prefix="wheels-", dir=cache))
    try:
        _run("pip wheel", [sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(work), *wanted], 600, log)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _image_key(wheels: Path) -> str:
    """What shapes the image: the packages, the wheel set, the code that builds it and the guest's unit."""
    names = sorted(p.name for p in wheels.glob("*.whl"))
    code = [inspect.getsource(f) for f in (_venv_hook, _configure, _build)]
    unit = (GUEST / "tuxai-vm-run.service").read_text()
    return _digest(SUITE, *PACKAGES, *MASKED, VENV, DATA_MOUNT, ROOT_SIZE, *names, *code, unit)


def _venv_hook(wheels: Path) -> str:
    """The mmdebstrap hook that makes /opt/tuxai in the chroot, natively, from the host's wheels."""
    return (
        f'mkdir -p "$1/tmp/wheels" && cp {wheels}/*.whl "$1/tmp/wheels/" && '
        f'chroot "$1" sh -ec "python3 -m venv {VENV} && '
        f'{VENV}/bin/pip install --quiet --no-index --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels"'
    )


def _configure(root: Path) -> None:
    """The guest's own files: fstab, hostname, the run unit enabled, tuxai from the second disk."""
    (root / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 0\n")  # the second disk: tuxai-vm-run.service
    (root / "etc/hostname").write_text("tuxai-vm\n")
    (root / DATA_MOUNT.lstrip("/")).mkdir(parents=True, exist_ok=True)
    units = root / "etc/systemd/system"
    shutil.copy(GUEST / "tuxai-vm-run.service", units / "tuxai-vm-run.service")
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "tuxai-vm-run.service").symlink_to("/etc/systemd/system/tuxai-vm-run.service")
    for unit in MASKED:
        (units / unit).unlink(missing_ok=True)
        (units / unit).symlink_to("/dev/null")
    site = next((root / VENV.lstrip("/")).glob("lib/python3*/site-packages"))
    (site / "tuxai-under-test.pth").write_text(f"{DATA_MOUNT}/src\n")
    program = root / VENV.lstrip("/") / "bin/tuxai"
    program.write_text(
        f"#!{VENV}/bin/python\n"
        f"# tuxai from the source tree on the VM tier's second disk ({DATA_MOUNT}/src)\n"
        "import sys\n\nfrom tuxai.cli.main import run\n\nsys.exit(run())\n"
    )
    program.chmod(0o755)
    (root / "usr/local/bin/tuxai").symlink_to(f"{VENV}/bin/tuxai")  # packaging/tuxai.service's ExecStart


def _build(final: Path, wheels: Path, log: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="image-", dir=final.parent))
    try:
        root = work / "root"
        _run(
            "mmdebstrap",
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                f"--customize-hook={_venv_hook(wheels)}",
                SUITE,
                str(root),
            ],
            900,
            log,
        )
        _configure(root)
        for name, pattern in (("vmlinuz", "vmlinuz-*"), ("initrd.img", "initrd.img-*")):
            found = sorted((root / "boot").glob(pattern))
            if not found:
                raise ImageError(f"the image has no /boot/{pattern}: did linux-image-cloud-amd64 install?")
            shutil.copy(found[-1], work / name)
        disk = work / "root.img"
        _run("truncate", ["truncate", "-s", ROOT_SIZE, str(disk)], 60, log)
        _run("mkfs.ext4", ["mkfs.ext4", "-q", "-F", "-L", "tuxai-vm", "-d", str(root), str(disk)], 600, log)
        shutil.rmtree(root)
        work.rename(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def guest_image(cache: Path | None = None) -> Image:
    """The cached guest image, built first when missing or out of date (~2 min here). Raises ``ImageError``."""
    cache = cache or cache_dir()
    started = time.monotonic()
    with _locked(cache):
        log = cache / "build.log"
        wheels = _wheels(cache, log)
        final = cache / f"image-{_image_key(wheels)}"
        built = not final.is_dir()
        if built and os.geteuid() != 0:
            raise ImageError(
                f"the VM image {final.name} is not built, and building it needs root (mmdebstrap's root mode"
                " keeps the files' owners): run `sudo make test-vm` once; later runs reuse the cache"
            )
        if built:
            log.write_text(f"building {final.name}\n")
            _build(final, wheels, log)
            for old in cache.glob("image-*"):  # one image at a time: each is ~0.7 GB
                if old != final and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            for old in cache.glob("wheels-*"):
                if old != wheels and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
    return Image(
        directory=final,
        kernel=final / "vmlinuz",
        initrd=final / "initrd.img",
        root=final / "root.img",
        build_s=time.monotonic() - started if built else 0.0,
    )


if __name__ == "__main__":
    image = guest_image()
    print(f"{image.directory} (built in {image.build_s:.0f} s)" if image.build_s else f"{image.directory} (cached)")
