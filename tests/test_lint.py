"""The workflow passes Snakemake's linter and snakefmt."""

import subprocess
import sys
from pathlib import Path

from conftest import REPO, snakemake

SNAKEFMT = Path(sys.executable).parent / "snakefmt"


def test_snakemake_lint():
    result = snakemake(REPO, "--lint", timeout=300)
    assert result.returncode == 0, result.stdout


def test_snakefmt_check():
    result = subprocess.run([str(SNAKEFMT), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_check():
    result = subprocess.run([str(RUFF), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check():
    result = subprocess.run([str(RUFF), "format", "--check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
