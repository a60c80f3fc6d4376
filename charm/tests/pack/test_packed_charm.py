"""Open the packed .charm and check it is what a user deploys: complete, and importable.

``KTA_PACKED_CHARM`` names the file (``./run-tests`` builds it with ``./pack``);
without it the test packs one into a temporary directory. The import check
runs ``src/charm.py``'s imports with the packed venv under the CPython of the
charm's base (3.12 for ubuntu@24.04), found as ``KTA_PYTHON312``,
``python3.12`` on PATH, or a pyenv 3.12.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib
import yaml

CHARM_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(CHARM_DIR))

import packing  # noqa: E402

PROJECT = packing.load_project(CHARM_DIR)
SITE = "venv/lib/python3.12/site-packages"


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    if path := os.environ.get("KTA_PACKED_CHARM"):
        return Path(path)
    out = tmp_path_factory.mktemp("pack") / packing.charm_filename(PROJECT)
    subprocess.run([str(CHARM_DIR / "pack"), "--output", str(out)], check=True)  # noqa: S603
    return out


@pytest.fixture(scope="module")
def zf(packed):
    with zipfile.ZipFile(packed) as z:
        yield z


@pytest.fixture(scope="module")
def python312() -> str:
    # A real interpreter, not a wrapper script such as a pyenv shim: Python finds
    # the venv from the path it was started as (venv/bin/python -> ../pyvenv.cfg).
    candidates = [os.environ.get("KTA_PYTHON312"), shutil.which("python3.12")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    for candidate in candidates:
        if candidate and "/shims/" not in candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("no CPython 3.12 found (set KTA_PYTHON312) to import the packed charm with")


def read_yaml(zf, name):
    return yaml.safe_load(zf.read(name))


def test_file_name_is_what_charmcraft_would_produce(packed):
    assert packed.name == "kafka-test-app_amd64.charm"


def test_top_level_files_and_modes(zf):
    names = set(zf.namelist())
    for required in ("manifest.yaml", "metadata.yaml", "config.yaml", "actions.yaml", "dispatch"):
        assert required in names
    mode = zf.getinfo("dispatch").external_attr >> 16
    assert stat.S_ISREG(mode) and mode & 0o111
    assert zf.getinfo("src/charm.py").external_attr >> 16 & 0o111
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "build/"))]


def test_manifest_bases(zf):
    manifest = read_yaml(zf, "manifest.yaml")
    assert manifest["bases"] == [
        {"name": "ubuntu", "channel": "24.04", "architectures": ["amd64"]}
    ]


def test_metadata_config_actions_match_charmcraft_yaml(zf):
    meta = read_yaml(zf, "metadata.yaml")
    assert meta["name"] == "kafka-test-app"
    assert meta["containers"] == {"kafka-test-app": {"resource": "kafka-test-app-image"}}
    assert meta["resources"]["kafka-test-app-image"]["type"] == "oci-image"
    assert meta["requires"]["kafka-cluster"]["interface"] == "kafka_client"
    assert meta["peers"] == {"app-peers": {"interface": "app-peers"}}
    assert read_yaml(zf, "config.yaml") == PROJECT["config"]
    assert read_yaml(zf, "actions.yaml") == PROJECT["actions"]
    assert set(PROJECT["actions"]) == {"start-process", "stop-process", "get-report"}


def test_dispatch_runs_src_charm_with_the_packed_venv(zf):
    dispatch = zf.read("dispatch").decode()
    assert dispatch.startswith("#!/bin/sh\n")
    assert 'exec "${python_path}" "${dispatch_path}/src/charm.py"' in dispatch
    assert 'python_path="${venv_bin_path}/python"' in dispatch


def test_charm_source_is_the_work_tree(zf):
    packed = {n.removeprefix("src/") for n in zf.namelist() if n.startswith("src/")}
    source = {p.name for p in (CHARM_DIR / "src").glob("*.py")}
    assert packed == source
    for name in source:
        assert zf.read(f"src/{name}") == (CHARM_DIR / "src" / name).read_bytes()


def test_venv_holds_exactly_the_locked_runtime_dependencies(zf):
    lock = tomllib.loads((CHARM_DIR / "uv.lock").read_text())
    versions = {p["name"]: p["version"] for p in lock["package"]}
    dist_infos = {
        n.split("/")[4] for n in zf.namelist() if n.startswith(SITE) and ".dist-info/" in n
    }
    expected = {"ops", "pyyaml", "websocket-client", "opentelemetry-api", "typing-extensions"}
    found = {}
    for d in dist_infos:
        name, version = d.removesuffix(".dist-info").rsplit("-", 1)
        found[name.lower().replace("_", "-")] = version
    assert found == {name: versions[name] for name in expected}
    assert "venv/pyvenv.cfg" in zf.namelist()
    # The PyYAML C extension must be built for the base's CPython.
    assert [n for n in zf.namelist() if n.startswith(f"{SITE}/yaml/_yaml.cpython-312-x86_64")]


def test_src_charm_imports_with_the_packed_venv(zf, tmp_path, python312):
    zf.extractall(tmp_path)
    # What dispatch does: link venv/bin/python to the unit's python3.
    (tmp_path / "venv" / "bin").mkdir()
    (tmp_path / "venv" / "bin" / "python").symlink_to(python312)
    probe = (
        "import json, sys, ops, yaml, charm\n"
        "print(json.dumps({'prefix': sys.prefix, 'ops': ops.__file__, 'version': ops.__version__,"
        " 'libyaml': yaml.__with_libyaml__, 'charm': charm.KafkaTestAppCharm.__name__,"
        " 'python': sys.version_info[:2]}))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{tmp_path}/lib:{tmp_path}/src",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    done = subprocess.run(  # noqa: S603
        [str(tmp_path / "venv" / "bin" / "python"), "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["prefix"] == str(tmp_path / "venv")
    assert facts["ops"].startswith(str(tmp_path / SITE))
    assert facts["version"] == "3.9.0"
    assert facts["libyaml"] is True
    assert facts["charm"] == "KafkaTestAppCharm"
    assert facts["python"] == [3, 12]
