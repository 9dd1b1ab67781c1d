"""Package layout (the metadata is in pyproject.toml).

The repository's ``reconstruction/`` and ``demos/`` folders install under names of their own,
``taichi_softras_reconstruction`` and ``taichi_softras_demos``, so that no generic top-level
``reconstruction`` (or ``demo_kit``) package lands in site-packages. From a checkout,
``python -m reconstruction.train`` and ``python demos/render.py`` work as they are; installed,
``python -m taichi_softras_reconstruction.train`` and ``taichi-softras demo render`` do the same.
"""

from setuptools import find_packages, setup

# installed package name -> the repository folder it is built from
RENAMED = {"taichi_softras_reconstruction": "reconstruction", "taichi_softras_demos": "demos"}

packages = find_packages(include=["taichi_softras", "taichi_softras.*"])
for name, folder in RENAMED.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=RENAMED)
