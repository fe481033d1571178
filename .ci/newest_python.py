"""Print the newest CPython release (3.10 or later) on this machine, for .ci/run.

Candidates: ``python3.N`` on PATH (a pyenv shim that is not enabled fails its probe and is
skipped), ``/usr/bin`` and ``/usr/local/bin``, and every pyenv version
(``$PYENV_ROOT/versions/*/bin/python3``). Each is asked for its own version, so names and links
are never trusted; pre-releases are skipped (they often lack the wheels the suite needs).
Prints the interpreter's path, or nothing when there is none.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess

PROBE = ("import json, sys; print(json.dumps([sys.implementation.name, list(sys.version_info), "
         "sys.executable]))")
MINIMUM = (3, 10)


def candidates() -> list[str]:
    found = []
    for minor in range(MINIMUM[1], 40):
        name = f"python3.{minor}"
        found += [p for p in (shutil.which(name), f"/usr/bin/{name}", f"/usr/local/bin/{name}")
                  if p]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(os.path.join(pyenv_root, "versions", "*", "bin", "python3")))
    return list(dict.fromkeys(p for p in found if os.access(p, os.X_OK)))


def probe(path: str) -> tuple[tuple[int, int, int], str] | None:
    try:
        out = subprocess.run([path, "-c", PROBE], capture_output=True, text=True, timeout=30)
        implementation, version, executable = json.loads(out.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    major, minor, micro, level = version[:4]
    if implementation != "cpython" or level != "final" or (major, minor) < MINIMUM:
        return None
    return (major, minor, micro), executable or path


def main() -> None:
    found = [p for p in map(probe, candidates()) if p is not None]
    if found:
        print(max(found)[1])


if __name__ == "__main__":
    main()
