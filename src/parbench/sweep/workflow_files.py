"""Where parbench's workflow (Snakefile, rules, scripts, schema, default config, profile) lives: the
checkout's top for a clone or an editable install, else the copy a wheel carries in parbench/_workflow
(setup.py puts it there at build time)."""

from pathlib import Path

# What a wheel carries, as paths relative to the checkout's top (setup.py and MANIFEST.in read this).
FILES = ("Snakefile", "environment.yml", "config", "profiles", "workflow")
BUNDLED = Path(__file__).parents[1] / "_workflow"


def root() -> Path:
    """The folder holding the Snakefile: the checkout's (src/parbench's grandparent) first, so that edits there
    take effect, then the wheel's copy."""
    for folder in (Path(__file__).resolve().parents[3], BUNDLED):
        if (folder / "Snakefile").is_file() and (folder / "workflow" / "rules").is_dir():
            return folder
    raise FileNotFoundError(f"parbench's workflow is neither in a checkout around {Path(__file__).parents[1]} nor in {BUNDLED}")


def snakefile() -> str:
    """The Snakefile, for `snakemake -s` or a `module` directive's `snakefile:`."""
    return str(root() / "Snakefile")
