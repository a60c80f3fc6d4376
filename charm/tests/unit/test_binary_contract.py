"""The environment the charm gives the workload is accepted by the real kafka-test-app binary.

Runs the binary (``KTA_BINARY``, or the debug build under
``${CARGO_TARGET_DIR:-$KTA_CACHE/target}``, which ``scripts/test`` builds
before it runs the charm tests) with exactly the environment of
``workload.build_environment``, pointed at a closed local port: it must get
past argument parsing to the connection attempt, and never print the
password. Skipped, saying why, when no binary has been built.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import workload
from config import parse_config

PASSWORD = "contract-Pa55word-never-printed"


def binary() -> Path | None:
    if env := os.environ.get("KTA_BINARY"):
        return Path(env)
    cache = Path(os.environ.get("KTA_CACHE", Path.home() / ".cache" / "kafka-test-app"))
    target = Path(os.environ.get("CARGO_TARGET_DIR", cache / "target"))
    path = target / "debug" / "kafka-test-app"
    return path if path.is_file() else None


BINARY = binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="no kafka-test-app binary built")

CONN = workload.Connection(
    servers="127.0.0.1:9", username="relation-7", password=PASSWORD, topic="contract-topic"
)


CASES = {
    "bounded producer, literal grant": (
        parse_config({"role": "producer", "num_messages": 3}),
        CONN,
    ),
    "producer, prefix grant": (
        parse_config({"role": "producer"}),
        workload.replace(CONN, covers_control=True),
    ),
    "consumer": (parse_config({"role": "consumer", "consumer_group_prefix": "g-"}), CONN),
}


def test_binary_accepts_the_charms_environment():
    running = {}
    for name, (config, conn) in CASES.items():
        env = workload.build_environment(config, conn)
        assert env["KTA_HTTP_ADDR"] == "0.0.0.0:8080"
        # Three at once, and port 8080 may be taken on this machine: any free port.
        env |= {"KTA_CONNECT_TIMEOUT": "1s", "KTA_HTTP_ADDR": "127.0.0.1:0"}
        command = workload.build_command(config.role).split()
        assert command[0] == "/usr/local/bin/kafka-test-app"
        running[name] = subprocess.Popen(  # noqa: S603 (our own binary, fixed arguments)
            [str(BINARY), *command[1:]],
            env={"PATH": "/usr/bin:/bin", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for name, process in running.items():
        output, _ = process.communicate(timeout=60)
        assert "cannot reach the Kafka cluster at 127.0.0.1:9" in output, (name, output)
        assert "error: invalid value" not in output and "unexpected argument" not in output
        assert PASSWORD not in output
