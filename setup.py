"""A wheel carries the workflow (parbench.sweep.workflow_files.FILES) as parbench/_workflow, so that an installed
parbench runs it without a clone. Everything else is in pyproject.toml."""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, "src")
from parbench.sweep.workflow_files import FILES  # noqa: E402  (one list: the locator's)


class BuildWithWorkflow(build_py):
    def run(self):
        super().run()
        if self.editable_mode:  # an editable install runs the checkout's own files
            return
        target = Path(self.build_lib, "parbench", "_workflow")
        for name in FILES:
            source = Path(name)
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithWorkflow})
