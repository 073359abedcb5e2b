"""`make lock`: requirements.lock, every package and version that installing parbench with its test extra
takes today, resolved by pip from pyproject.toml's ranges without installing anything. `make install` and
`make test` install under it (pip's -c), so two machines a month apart get the same set; pyproject.toml
keeps the ranges for people who install parbench as a library. Commit the file it writes."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"

with tempfile.TemporaryDirectory() as tmp:
    report = Path(tmp, "report.json")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--report", str(report), f"{ROOT}[test]"],
        check=True,
    )
    installed = json.loads(report.read_text())["install"]
pins = sorted(
    (i["metadata"]["name"].lower().replace("_", "-"), i["metadata"]["version"]) for i in installed if i["metadata"]["name"] != "parbench"
)
header = f"# Written by `make lock` (tools/lock.py) from pyproject.toml's ranges, Python {sys.version.split()[0]}; do not edit.\n"
LOCK.write_text(header + "".join(f"{name}=={version}\n" for name, version in pins))
print(f"{LOCK.name}: {len(pins)} packages")
