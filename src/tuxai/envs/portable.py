"""Whether a requirements/lock file's text builds the same on a cluster node (review item 4).

A node gets the text alone (``JobSpec.env_lock``) and keeps it as ``<cache>/sources/<hash>.txt``: a
reference relative to the file's own folder (``-r base.txt``, ``-c c.txt``, ``-e ./pkg``,
``./wheels/x.whl``, ``--find-links ./wheels``, ``pkg @ file:./x``, a uv.lock's ``source = { path = "…" }``)
would resolve against that cache folder there — failing, or naming something else. ``submit`` refuses
such a file in one line before it sends the text.
"""

from __future__ import annotations

import re

from tuxai.errors import UsageError

# pip's options whose value is a file or folder (the short ones may be glued to it: -rbase.txt)
_PATH_OPTIONS = ("--requirement", "--constraint", "--editable", "--find-links", "-r", "-c", "-e", "-f")
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tar\.bz2|tgz)$")
_FILE_URL = re.compile(r"(?<![\w+])file:(?!/)(\S+)")  # file:./x, file:x (file:/x and file:///x are absolute)
_AT = re.compile(r"@\s*(\S+)")  # name @ ./x
_UV_SOURCE = re.compile(r"""\b(path|editable|directory)\s*=\s*"([^"]*)\"""")  # uv.lock's local sources


def _relative(value: str) -> bool:
    """Whether ``value`` names a local path relative to the file (not absolute, not ``~``, not a URL)."""
    value = value.strip().strip("'\"")
    if not value or value.startswith(("/", "~", "$")) or re.match(r"^[A-Za-z][\w+.-]*://", value):
        return False
    return not value.startswith("file:") or bool(_FILE_URL.match(value))


def relative_references(text: str) -> list[str]:
    """The lines of a requirements file or uv.lock ``text`` that name a path relative to the file.

    >>> relative_references("numpy==2.0\\n-r base.txt\\n/opt/w/x-1.0-py3-none-any.whl\\n")
    ['-r base.txt']
    """
    found: list[str] = []
    uv_lock = "[[package]]" in text
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if uv_lock:
            if any(_relative(v) for _, v in _UV_SOURCE.findall(line)):
                found.append(line)
            continue
        if _option_relative(line) or _requirement_relative(line):
            found.append(line)
    return found


def _option_relative(line: str) -> bool:
    for option in _PATH_OPTIONS:
        if line == option or not line.startswith(option):
            continue
        rest = line[len(option) :]
        if option.startswith("--") and rest[:1] not in ("=", " ", "\t"):
            continue  # another long option that starts alike
        return _relative(rest.lstrip("= \t"))
    return False


def _requirement_relative(line: str) -> bool:
    if line.startswith("-"):
        return False  # another option (--index-url, --hash …)
    first = line.split()[0].split(";")[0]
    path = first.startswith((".", "file:")) or "/" in first or _ARCHIVE.search(first)
    if path and "@" not in first and _relative(first):
        return True  # a path: ./pkg, wheels/x.whl, x-1.0.tar.gz
    if _FILE_URL.search(line):
        return True
    at = _AT.search(line)
    return bool(at and at.group(1).startswith((".", "file:")) and _relative(at.group(1)))


def check_portable(text: str, source: str) -> None:
    """Refuse a file whose text names paths relative to it: a node would resolve them elsewhere.

    Raises:
        UsageError: it does, the first such line named.
    """
    found = relative_references(text)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UsageError(
            f"--env {source}: `{found[0]}`{more} is relative to the file; a cluster node gets its text alone",
            hint="make the file self-contained (absolute paths or index names), or use a project directory"
            " present on every node",
        )
