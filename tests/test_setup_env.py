"""scripts/setup_env.sh, run with DRY_RUN=1 on a copy of scripts/, requirements/ and pyproject.toml (so no
existing .venv is found) and a PATH that holds only the tools it runs and the interpreters a case allows: which environments it
plans, with which Python and which packages, and when it refuses."""
import glob
import os
import shlex
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.one_stack("tf2")  # the script, with Pythons of its own

TOOLS = ("bash", "dirname", "cmp", "cat", "sed", "rm")  # what setup_env.sh runs besides Python


def real_interpreter(*versions):
    """(name, binary) of the first of `versions` this machine has, pyenv shims resolved (they need pyenv on
    PATH); skips the test without one."""
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for version in versions:
        name = "python" + version
        found = [shutil.which(name)] + sorted(glob.glob("%s/versions/%s.*/bin/%s" % (pyenv_root, version, name)))
        for candidate in filter(None, found):
            done = subprocess.run([candidate, "-c", "import sys, venv; print(sys.executable)"],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True,
                                  timeout=60)
            if done.returncode == 0:
                return name, done.stdout.strip()
    pytest.skip("no Python %s on this machine" % " or ".join(versions))


@pytest.fixture(scope="module")
def py37():
    return real_interpreter("3.7")


@pytest.fixture(scope="module")
def py3x():
    return real_interpreter("3.11", "3.10", "3.9")


@pytest.fixture
def repo(tmp_path):
    for part in ("scripts", "requirements"):
        shutil.copytree(str(REPO_ROOT / part), str(tmp_path / "repo" / part))
    shutil.copy(str(REPO_ROOT / "pyproject.toml"), str(tmp_path / "repo"))
    return tmp_path / "repo"


def dry_run(repo, interpreters, *args, gpu="0"):
    """Runs the copy's setup_env.sh with DRY_RUN=1 on a PATH of TOOLS and `interpreters` ((name, binary) pairs)
    alone, HOME and PYENV_ROOT in empty folders. Returns (exit status, output, {environment: (interpreter name,
    packages)} from the planned venv and pip lines). PIP_NO_INDEX keeps a script that ignores DRY_RUN offline."""
    bin_dir, home = repo.parent / "bin", repo.parent / "home"
    for folder in (bin_dir, home):
        shutil.rmtree(str(folder), ignore_errors=True)
        folder.mkdir()
    for name, target in [(tool, shutil.which(tool)) for tool in TOOLS] + list(interpreters):
        (bin_dir / name).symlink_to(target)
    env = {"PATH": str(bin_dir), "HOME": str(home), "PYENV_ROOT": str(home / ".pyenv"), "DRY_RUN": "1",
           "GPU": gpu, "PIP_NO_INDEX": "1"}
    done = subprocess.run([str(bin_dir / "bash"), str(repo / "scripts" / "setup_env.sh")] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    commands = [shlex.split(line[len("[dry-run]"):]) for line in done.stdout.splitlines()
                if line.startswith("[dry-run]")]
    pythons = {c[3]: os.path.basename(c[0]) for c in commands if c[1:3] == ["-m", "venv"]}
    packages = {c[0][:-len("/bin/python")]: c[5:] for c in commands
                if c[1:5] == ["-m", "pip", "install", "-q"] and "--upgrade" not in c and "-e" not in c}
    return done.returncode, done.stdout + done.stderr, {d: (pythons[d], packages.get(d)) for d in pythons}


def project_installs(output):
    """The environments that the dry run installs this project into (`pip install -q -e .`), in order."""
    commands = [shlex.split(line[len("[dry-run]"):]) for line in output.splitlines() if line.startswith("[dry-run]")]
    return [c[0][:-len("/bin/python")] for c in commands if c[1:] == ["-m", "pip", "install", "-q", "-e", "."]]


def project_stamp(repo):
    """What setup_env.sh records in .installed-project: pyproject.toml and the checkout the install points at."""
    return (repo / "pyproject.toml").read_text() + "# editable at %s\n" % os.path.realpath(str(repo))


def pins(requirements, tensorflow="tensorflow"):
    """The requirements file's pins without comments, with `tensorflow` as the TensorFlow distribution's name."""
    text = (REPO_ROOT / "requirements" / requirements).read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    return [tensorflow + line[len("tensorflow"):] if line.startswith("tensorflow==") else line
            for line in lines if line]


@pytest.mark.parametrize("found", ["3.7", "3.9-3.11"])
def test_default_stack_with_the_pythons_found(repo, py37, py3x, found):
    """With Python 3.7 alone the default stack is TF 1.15 (it needs no Python 3.9-3.11); without 3.7, TF 2.15."""
    interpreter, requirements = (py37, "tf1.txt") if found == "3.7" else (py3x, "tf2.txt")
    code, output, planned = dry_run(repo, [interpreter], "default")
    assert code == 0, output
    assert planned == {".venv": (interpreter[0], pins(requirements))}, output


def test_default_without_any_python_says_which_it_needs(repo):
    code, output, planned = dry_run(repo, [], "default")
    assert code == 1 and not planned, output
    assert "no Python 3.7 (for TF 1.15) nor 3.9-3.11 (for TF 2.15) found" in output


def test_an_unknown_argument_is_refused_before_anything_is_made(repo, py37, py3x):
    code, output, planned = dry_run(repo, [py37, py3x], "tf1")
    assert code == 1 and not planned, output
    assert "unknown argument 'tf1': give default, tf2 or all" in output


@pytest.mark.parametrize("which", ["tf2", "all"])
def test_tf2_needs_python_3x_and_says_so_before_making_anything(repo, py37, which):
    code, output, planned = dry_run(repo, [py37], which)
    assert code == 1 and not planned, output
    assert "no Python 3.9-3.11 found: .venv-tf2 needs one (TF 2.15 supports Python 3.9-3.11 only)" in output


def test_gpu_installs_one_tensorflow_distribution_per_environment(repo, py37, py3x):
    """tensorflow-gpu in place of tensorflow 1.15.5 (whose wheel has no CUDA), tensorflow[and-cuda] in place of
    tensorflow 2.15.1: the same pins otherwise, and never two TensorFlow distributions in one environment."""
    code, output, planned = dry_run(repo, [py37, py3x], "all", gpu="1")
    assert code == 0, output
    assert planned == {".venv": ("python3.7", pins("tf1.txt", "tensorflow-gpu")),
                       ".venv-tf2": (py3x[0], pins("tf2.txt", "tensorflow[and-cuda]"))}, output
    assert "CUDA 10.0" in output


@pytest.mark.parametrize("made_with_gpu,gpu", [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")])
def test_switching_gpu_recreates_the_environment(repo, py37, py3x, made_with_gpu, gpu):
    """An environment is kept when made with the same GPU choice, else made anew; the stamp of one made without
    GPU=1 is the requirements file, as before GPU was recorded (such environments are kept)."""
    (repo / ".venv").mkdir()
    stamp = (repo / "requirements" / "tf1.txt").read_text() + ("# GPU=1\n" if made_with_gpu == "1" else "")
    (repo / ".venv" / ".installed").write_text(stamp)
    code, output, planned = dry_run(repo, [py37, py3x], "default", gpu=gpu)
    assert code == 0, output
    assert (".venv" in planned) == (made_with_gpu != gpu), output


def test_each_new_environment_gets_the_project_editable_after_its_requirements(repo, py37, py3x):
    code, output, planned = dry_run(repo, [py37, py3x], "all")
    assert code == 0, output
    assert set(planned) == {".venv", ".venv-tf2"} and project_installs(output) == [".venv", ".venv-tf2"], output
    lines = [line for line in output.splitlines() if line.startswith("[dry-run]")]
    for env in (".venv", ".venv-tf2"):
        own = [line for line in lines if line.startswith("[dry-run] %s/bin/python" % env)]
        assert own[-1] == "[dry-run] %s/bin/python -m pip install -q -e ." % env, output  # after the pins
    assert "(write .venv/.installed-project)" in output


@pytest.mark.parametrize("project", ["installed", "missing", "pyproject changed", "checkout moved"])
def test_a_kept_environment_gets_the_project_again_when_pyproject_or_the_checkout_changed(repo, py37, project):
    """An environment whose requirements are unchanged is kept; the project is installed into it unless its stamp
    records this pyproject.toml at this checkout (environments made before the project was installable have none)."""
    (repo / ".venv").mkdir()
    (repo / ".venv" / ".installed").write_text((repo / "requirements" / "tf1.txt").read_text())
    stamp = {"missing": None,
             "checkout moved": project_stamp(repo).replace(os.path.realpath(str(repo)), "/elsewhere")}.get(
        project, project_stamp(repo))
    if stamp is not None:
        (repo / ".venv" / ".installed-project").write_text(stamp)
    if project == "pyproject changed":
        with open(str(repo / "pyproject.toml"), "a") as f:
            f.write("# a change\n")
    code, output, planned = dry_run(repo, [py37], "default")
    assert code == 0, output
    assert planned == {}, output
    assert project_installs(output) == ([] if project == "installed" else [".venv"]), output

