#!/usr/bin/env bash
# Does the student package (assignments/pyproject.toml) install on every platform and
# Python version students use? For Linux x86_64, macOS arm64 and Windows, and each
# Python version that its requires-python allows, pip's resolver resolves the student
# wheel with binary wheels only (--only-binary=:all:, --dry-run, nothing installed),
# then a table says OK (with the TensorFlow build chosen) or FAILED (with pip's reason).
#
# pip's --platform and --python-version choose the wheel tags but not the environment
# markers, which pip evaluates for the machine it runs on (a Linux x86_64 host would
# pick tensorflow-cpu for "macOS" too). This script runs pip's own resolver with the
# target's marker environment instead, so the table is the resolution a student's pip
# on that platform does.
#
# Usage: tools/check-student-platforms.sh      (make check-platforms)
#   PYTHON=python3                      interpreter whose pip resolves (default: .venv's)
#   PY_VERSIONS="3.12 3.13"             only these Python versions
# Needs the package registry. Exit status 1 when any combination fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The wheel students get, built from a clean copy (no stale assignments/build/).
mkdir "$work/src"
tar -C assignments --exclude=build --exclude=dist --exclude='*.egg-info' --exclude=__pycache__ \
    -cf - . | tar -C "$work/src" -xf -
"$PYTHON" -m pip wheel --quiet --no-deps "$work/src" -w "$work" >/dev/null
wheel=$(ls "$work"/rnn_course_student-*.whl)

exec "$PYTHON" - "$wheel" "$work" "${PY_VERSIONS:-}" <<'PY'
import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from pip._vendor.packaging.specifiers import SpecifierSet
from pip._vendor.packaging.utils import canonicalize_name

wheel, work, only = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split()

LINUX_TAGS = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)] + [
    "manylinux2014_x86_64"
]
PLATFORMS = {
    # glibc 2.35 (Ubuntu 22.04) and every older manylinux tag, as pip there accepts
    "Linux x86_64": (
        LINUX_TAGS,
        {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
         "os_name": "posix"},
    ),
    # macOS 12, the oldest TensorFlow supports (pip adds the older macOS tags itself)
    "macOS arm64": (
        ["macosx_12_0_arm64"],
        {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
         "os_name": "posix"},
    ),
    "Windows x64": (
        ["win_amd64"],
        {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
         "os_name": "nt"},
    ),
}

# pip's resolver, with environment markers evaluated for the target, not this host.
RESOLVE = r"""
import json, sys
from pip._vendor.packaging import markers
target = json.loads(sys.argv[1])
host = markers.default_environment
markers.default_environment = lambda: {**host(), **target}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[2:]))
"""

with zipfile.ZipFile(wheel) as archive:
    [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    requires_python = SpecifierSet(Parser().parsestr(archive.read(name).decode())["Requires-Python"])
versions = [f"3.{minor}" for minor in range(8, 16) if f"3.{minor}.0" in requires_python]
if only:
    versions = [v for v in versions if v in only] + [v for v in only if v not in versions]


def resolve(platform: str, version: str) -> tuple[bool, str]:
    tags, env = PLATFORMS[platform]
    env = {**env, "python_version": version, "python_full_version": f"{version}.0",
           "implementation_name": "cpython", "implementation_version": f"{version}.0",
           "platform_python_implementation": "CPython", "platform_release": "",
           "platform_version": ""}
    report = work / f"report-{platform.replace(' ', '_')}-{version}.json"
    command = [sys.executable, "-c", RESOLVE, json.dumps(env), "install", "--dry-run",
               "--quiet", "--ignore-installed", "--target", str(work / "target"),
               "--only-binary=:all:", "--python-version", version, "--report", str(report)]
    for tag in tags:
        command += ["--platform", tag]
    result = subprocess.run([*command, wheel], capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        return False, (errors or result.stderr.strip().splitlines() or ["pip failed"])[0]
    installs = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}
    for name in ("tensorflow-cpu", "tensorflow"):
        if name in installs:
            return True, f"{name} {installs[name]}, keras {installs.get('keras', '?')}, " \
                         f"{len(installs)} packages"
    return False, "resolved without TensorFlow"


print(f"student package {Path(wheel).name}: requires-python {requires_python}")
print(f"{'platform':14} {'python':7} {'result':7} detail")
failed = 0
for platform in PLATFORMS:
    for version in versions:
        ok, detail = resolve(platform, version)
        failed += not ok
        print(f"{platform:14} {version:7} {'OK' if ok else 'FAILED':7} {detail}", flush=True)
print(f"{len(PLATFORMS) * len(versions) - failed} of {len(PLATFORMS) * len(versions)} resolve")
sys.exit(1 if failed else 0)
PY
