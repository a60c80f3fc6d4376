"""Build the kafka-test-app ``.charm`` without charmcraft (used by ``./pack``).

A ``.charm`` is a zip that Juju unpacks into the charm container. This
writes what ``charmcraft pack`` (4.x, ``uv`` plugin) would put there for this
charm, following charmcraft's own source (``charmcraft/services/package.py``,
``charmcraft/dispatch.py``, ``charmcraft/parts/plugins/_uv.py``):

* ``manifest.yaml`` (bases the charm runs on), ``metadata.yaml``,
  ``config.yaml``, ``actions.yaml`` generated from ``charmcraft.yaml``;
* ``dispatch``: the script Juju runs for every hook; it links
  ``venv/bin/python`` to the unit's ``python3`` and runs ``src/charm.py``;
* ``src/``: the charm code; ``venv/``: the runtime dependencies from
  ``uv.lock`` (binary wheels for the base's CPython, checked against the
  lock file's sha256 hashes), in ``venv/lib/python3.X/site-packages``.

Run ``python packing.py --help``. Needs Python >= 3.11, PyYAML and pip.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import tomllib
import yaml

CHARM_DIR = Path(__file__).resolve().parent
# Ubuntu base -> the CPython it ships (the venv must match it).
BASE_PYTHON = {"ubuntu@22.04": "3.10", "ubuntu@24.04": "3.12"}
ARCH_PLATFORMS = {
    "amd64": ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64"],
}
# Keys of charmcraft.yaml that go into metadata.yaml (charmcraft's CharmMetadata).
METADATA_KEYS = (
    "name",
    "summary",
    "description",
    "assumes",
    "containers",
    "devices",
    "extra-bindings",
    "peers",
    "provides",
    "requires",
    "resources",
    "storage",
    "subordinate",
    "terms",
    "links",
)
# charmcraft.dispatch.DISPATCH_SCRIPT_TEMPLATE, with the entrypoint filled in.
DISPATCH = """\
#!/bin/sh
dispatch_path="$(dirname $(realpath $0))"
venv_bin_path="${dispatch_path}/venv/bin"
python_path="${venv_bin_path}/python"
if [ ! -e "${python_path}" ]; then
    mkdir -p "${venv_bin_path}"
    ln -s $(which python3) "${python_path}"
fi

# Add charm lib and source directories to PYTHONPATH so the charm can import
# libraries and its own modules as expected.
export PYTHONPATH="${dispatch_path}/lib:${dispatch_path}/src"

# Add the charm's lib and usr/lib directories to LD_LIBRARY_PATH, allowing
# staged packages to be discovered by the dynamic linker.
export LD_LIBRARY_PATH="${dispatch_path}/usr/lib:${dispatch_path}/lib:${dispatch_path}/usr/lib/$(uname -m)-linux-gnu"

exec "${python_path}" "${dispatch_path}/src/charm.py"
"""


def load_project(charm_dir: Path = CHARM_DIR) -> dict:
    """Return the parsed ``charmcraft.yaml``."""
    return yaml.safe_load((charm_dir / "charmcraft.yaml").read_text())


def target(project: dict) -> tuple[str, str, str, str]:
    """Return (distribution, series, architecture, python version) to build for."""
    base = project["base"]
    distribution, series = base.split("@")
    [arch] = list(project["platforms"])
    return distribution, series, arch, BASE_PYTHON[base]


def charm_filename(project: dict) -> str:
    """Return the file name charmcraft would give the packed charm."""
    _, _, arch, _ = target(project)
    return f"{project['name']}_{arch}.charm"


def metadata_files(project: dict, started_at: str) -> dict[str, str]:
    """Return the YAML files generated from ``charmcraft.yaml``, by name."""
    distribution, series, arch, _ = target(project)
    metadata = {k: project[k] for k in METADATA_KEYS if k in project}
    if "title" in project:
        metadata["display-name"] = project["title"]
    manifest = {
        "charmcraft-version": "none: built by kafka-test-app charm/pack",
        "charmcraft-started-at": started_at,
        "bases": [{"name": distribution, "channel": series, "architectures": [arch]}],
        "analysis": {
            "attributes": [
                {"name": "language", "result": "python"},
                {"name": "framework", "result": "operator"},
            ]
        },
    }
    files = {
        "manifest.yaml": manifest,
        "metadata.yaml": metadata,
        "config.yaml": project.get("config"),
        "actions.yaml": project.get("actions"),
    }
    return {
        name: yaml.safe_dump(content, sort_keys=False)
        for name, content in files.items()
        if content
    }


def runtime_requirements(lock_path: Path) -> list[tuple[str, str, list[str]]]:
    """Return (name, version, wheel sha256s) of the project's runtime deps in ``uv.lock``.

    Follows the root package's ``dependencies`` (not its dependency groups)
    through the lock file.
    """
    lock = tomllib.loads(lock_path.read_text())
    packages = {p["name"]: p for p in lock["package"]}
    root = next(p for p in lock["package"] if p.get("source", {}).get("virtual") == ".")
    todo = [d["name"] for d in root.get("dependencies", [])]
    seen: dict[str, dict] = {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = packages[name]
        todo.extend(d["name"] for d in packages[name].get("dependencies", []))
    result = []
    for name in sorted(seen):
        pkg = seen[name]
        hashes = [w["hash"].removeprefix("sha256:") for w in pkg.get("wheels", [])]
        result.append((name, pkg["version"], hashes))
    return result


def fetch_wheels(
    requirements: list[tuple[str, str, list[str]]], python: str, arch: str, cache: Path
) -> Path:
    """Download (once) the binary wheels for ``python``/``arch`` into ``cache``; verify hashes."""
    wheel_dir = cache / f"cp{python.replace('.', '')}-{arch}"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    req_file = wheel_dir / "requirements.txt"
    req_file.write_text(
        "".join(
            f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes) + "\n"
            for name, version, hashes in requirements
        )
    )
    platform_args = [arg for p in ARCH_PLATFORMS[arch] for arg in ("--platform", p)]
    subprocess.run(  # noqa: S603 (fixed arguments)
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            *platform_args,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{python.replace('.', '')}",
            "--dest",
            str(wheel_dir),
            "-r",
            str(req_file),
        ],
        check=True,
    )
    return wheel_dir


def install_venv(
    venv: Path,
    wheel_dir: Path,
    requirements: list[tuple[str, str, list[str]]],
    python: str,
    arch: str,
) -> None:
    """Lay out ``venv`` (no interpreter: dispatch links the unit's python3) from the wheels."""
    site = venv / "lib" / f"python{python}" / "site-packages"
    platform_args = [arg for p in ARCH_PLATFORMS[arch] for arg in ("--platform", p)]
    subprocess.run(  # noqa: S603 (fixed arguments)
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheel_dir),
            "--no-deps",
            "--no-compile",
            "--only-binary=:all:",
            *platform_args,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--abi",
            f"cp{python.replace('.', '')}",
            "--target",
            str(site),
            *[f"{name}=={version}" for name, version, _ in requirements],
        ],
        check=True,
    )
    for scripts in (site / "bin",):  # console scripts pip put next to the packages
        shutil.rmtree(scripts, ignore_errors=True)
    (venv / "pyvenv.cfg").write_text(
        f"home = /usr/bin\ninclude-system-site-packages = false\nversion = {python}\n"
    )


def write_zip(root: Path, output: Path, date_time: tuple[int, ...]) -> None:
    """Zip ``root`` into ``output`` with sorted entries, fixed times and kept modes."""
    tmp = output.with_suffix(".charm.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=date_time)
            mode = path.stat().st_mode
            info.external_attr = (stat.S_IFREG | (0o755 if mode & 0o111 else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(output)


def pack(output: Path, cache: Path, charm_dir: Path = CHARM_DIR) -> Path:
    """Build the charm into ``output`` and return its path."""
    project = load_project(charm_dir)
    _, _, arch, python = target(project)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01: zip's minimum
    stamp = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    requirements = runtime_requirements(charm_dir / "uv.lock")
    wheel_dir = fetch_wheels(requirements, python, arch, cache)
    with tempfile.TemporaryDirectory(prefix="kta-pack-") as tmp:
        root = Path(tmp)
        for name, text in metadata_files(project, stamp.isoformat()).items():
            (root / name).write_text(text)
        (root / "dispatch").write_text(DISPATCH)
        (root / "dispatch").chmod(0o755)
        shutil.copytree(
            charm_dir / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__")
        )
        (root / "src" / "charm.py").chmod(0o755)
        install_venv(root / "venv", wheel_dir, requirements, python, arch)
        output.parent.mkdir(parents=True, exist_ok=True)
        write_zip(root, output, stamp.timetuple()[:6])
    return output


def main() -> None:
    """Command line: ``packing.py [--output FILE]``."""
    project = load_project()
    cache = Path(os.environ.get("KTA_CACHE", Path.home() / ".cache" / "kafka-test-app"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, default=CHARM_DIR / charm_filename(project))
    args = parser.parse_args()
    out = pack(args.output.resolve(), cache / "charm-wheels")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"{out} ({out.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
