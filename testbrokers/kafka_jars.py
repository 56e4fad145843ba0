"""Resolve the Apache Kafka broker's jars from Maven Central, cached under build/.

``mvn dependency:copy-dependencies`` on ``testbrokers/pom.xml`` copies
org.apache.kafka:kafka_2.13 and its runtime dependencies into
``build/kafka-<version>/libs``.  A marker file written last makes the cache
valid; a lock file keeps two test sessions from resolving at once.  Nothing
here is committed (``build/`` is ignored) and Maven's own repository
(~/.m2) makes a second resolution quick.

Command line::

    python -m testbrokers.kafka_jars      # prints the libs directory
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile

__all__ = ["KAFKA_VERSION", "ROOT", "POM", "java_and_maven", "libs_dir", "ensure_jars"]

KAFKA_VERSION = "4.4.0"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POM = os.path.join(ROOT, "testbrokers", "pom.xml")
_MARKER = ".complete"


def java_and_maven() -> tuple[bool, str]:
    """(True, "") when ``java`` and ``mvn`` both run, else (False, what is missing)."""
    missing = []
    for cmd in (["java", "-version"], ["mvn", "-v"]):
        exe = shutil.which(cmd[0])
        if exe is None:
            missing.append(f"{cmd[0]} not on PATH")
            continue
        try:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            missing.append(f"{' '.join(cmd)} failed: {exc}")
    return (not missing), "; ".join(missing)


def libs_dir(version: str = KAFKA_VERSION, build_dir: str | None = None) -> str:
    return os.path.join(build_dir or os.path.join(ROOT, "build"), f"kafka-{version}", "libs")


def ensure_jars(version: str = KAFKA_VERSION, build_dir: str | None = None,
                timeout: float = 900) -> str:
    """Return the directory holding the broker's jars, resolving them first if needed.

    Raises ``RuntimeError`` with Maven's output when resolution fails.
    """
    libs = libs_dir(version, build_dir)
    if os.path.exists(os.path.join(libs, _MARKER)):
        return libs
    parent = os.path.dirname(libs)
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(libs, _MARKER)):
            return libs  # another session resolved them while this one waited
        ok, why = java_and_maven()
        if not ok:
            raise RuntimeError(f"the Apache Kafka test broker needs Java and Maven: {why}")
        tmp = tempfile.mkdtemp(prefix="libs-", dir=parent)
        cmd = ["mvn", "-q", "-B", "-f", POM, f"-Dkafka.version={version}",
               "dependency:copy-dependencies", f"-DoutputDirectory={tmp}",
               "-DincludeScope=runtime"]
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=timeout, text=True)
            if proc.returncode != 0 or not any(
                    n.startswith(f"kafka_2.13-{version}") for n in os.listdir(tmp)):
                raise RuntimeError(
                    f"resolving Apache Kafka {version} failed ({' '.join(cmd)}, "
                    f"exit {proc.returncode}):\n{proc.stdout[-4000:]}")
            open(os.path.join(tmp, _MARKER), "w").close()
            if os.path.exists(libs):
                shutil.rmtree(libs)  # an incomplete earlier attempt
            os.rename(tmp, libs)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    return libs


if __name__ == "__main__":
    print(ensure_jars(sys.argv[1] if len(sys.argv) > 1 else KAFKA_VERSION))
