"""Build hook: ship the checkout's ``models/`` and ``configs/`` inside the package.

In the repository the shipped weights, model cards and default configs live at the top level (they are
reviewed and versioned as data, not code). A regular ``pip install .`` copies them into
``spotid/_data/{models,configs}`` of the installed package, so a non-editable install works from any
directory; an editable install reads them from the checkout (``spotid.util.data_dir``). Everything else
about the build is in pyproject.toml.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = ("models", "configs")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return          # the editable finder maps spotid/ to the checkout, where models/ sits beside it
        for name in SHIPPED:
            src, dst = HERE / name, Path(self.build_lib) / "spotid" / "_data" / name
            if dst.exists():
                shutil.rmtree(dst)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
