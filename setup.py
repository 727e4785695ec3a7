from setuptools import find_packages, setup

from pcci import __version__

setup(
    name="pcci",
    version=__version__,
    description="Parallel Computer Communication Interface: run commands across a small cluster",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",  # Debian calls it Expat (LICENSE, debian/copyright)
    packages=find_packages(include=["pcci", "pcci.*"]),
    # The dashboard the master serves at /: plain files, no build step.
    package_data={"pcci.master": ["dashboard/*"]},
    python_requires=">=3.9",
    install_requires=["bottle>=0.12.23", "gevent>=22.10", "psutil>=5.9.4", "PyYAML>=6.0"],
    # The master expands node ranges with ClusterShell's NodeSet and writes GET /metrics with
    # prometheus_client; the worker needs neither.
    extras_require={"master": ["ClusterShell>=1.9", "prometheus-client>=0.16"]},
    entry_points={"console_scripts": [
        "pcci = pcci.cli.main:_console",
        "pcci-master = pcci.cli.services:main_master",
        "pcci-worker = pcci.cli.services:main_worker",
    ]},
)
