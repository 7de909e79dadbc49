"""The architecture's fences, checked on the code itself: who may import Prefect, boto3 and pymongo.

Import checks run in a fresh interpreter (the test process has imported everything already).
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "facelogin"
ORCHESTRATION = PACKAGE / "orchestration"  # the one area of the package that may import Prefect
PIPELINE = ("prefect", "pymongo", "boto3", "botocore")


def loaded_after(code: str) -> set[str]:
    """Top-level names of every module loaded by `code` in a new interpreter."""
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def modules_imported_by(path: Path) -> set[str]:
    """Dotted names of the modules imported anywhere in a file, including inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def imports_of(path: Path) -> set[str]:
    """Top-level names imported anywhere in a file, including inside functions."""
    return {name.split(".")[0] for name in modules_imported_by(path)}


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def test_the_login_side_loads_no_pipeline_dependency() -> None:
    loaded = loaded_after(
        "import facelogin.login, facelogin.login.calibrate, facelogin.cli, facelogin.cli.login"
    )
    assert not loaded & set(PIPELINE), loaded & set(PIPELINE)


def test_the_package_and_its_sync_core_load_no_prefect() -> None:
    modules = ["facelogin", "facelogin.settings", "facelogin.bundle", "facelogin.enroll", "facelogin.faces"]
    modules += [f"facelogin.sync.{p.stem}" for p in (PACKAGE / "sync").glob("[!_]*.py")]
    modules += [
        "facelogin." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        for p in (PACKAGE / "adapters").rglob("*.py")
    ]
    loaded = loaded_after("import " + ", ".join(modules))
    assert "facelogin" in loaded and "prefect" not in loaded


def test_the_web_app_loads_no_prefect() -> None:
    loaded = loaded_after("import facelogin.web, facelogin.web.app, facelogin.cli.web, facelogin.audit")
    assert "starlette" in loaded and "prefect" not in loaded


def test_only_the_orchestration_area_of_the_package_imports_prefect() -> None:
    importing = {p for p in PACKAGE.rglob("*.py") if imports_of(p) & {"prefect", "prefect_aws"}}
    assert importing and all(p.is_relative_to(ORCHESTRATION) for p in importing), sorted(
        p.relative_to(ROOT).as_posix() for p in importing if not p.is_relative_to(ORCHESTRATION)
    )


def test_the_orchestration_area_loads_no_prefect_until_it_is_used() -> None:
    """The CLI imports it to answer a wrong path or a bad setting before Prefect starts."""
    modules = [f"facelogin.orchestration.{p.stem}" for p in ORCHESTRATION.glob("[!_]*.py")]
    loaded = loaded_after("import facelogin.orchestration, " + ", ".join(modules))
    assert len(modules) >= 5 and "facelogin" in loaded and "prefect" not in loaded


def test_settings_come_from_prefect_blocks_through_one_reader() -> None:
    """The CLI and the flow read the blocks the settings name with one function: only
    orchestration/blocks.py imports the block types that hold settings and turns them into settings."""
    block_types = {"prefect_aws", "prefect.blocks.system"}
    readers = set()
    for path in sources("src", "flows", "tasks", "deployments"):
        tree = ast.parse(path.read_text())
        calls = {
            n.func.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        if modules_imported_by(path) & block_types or calls & {"with_block_objects", "with_blocks"}:
            readers.add(path.relative_to(ROOT).as_posix())
    readers.discard("src/facelogin/settings.py")  # where with_block_objects calls with_blocks
    assert readers == {"src/facelogin/orchestration/blocks.py"}
    assert "facelogin.orchestration.blocks" in modules_imported_by(ROOT / "flows" / "sync_faces.py")


def writes_environ(node: ast.AST) -> bool:
    """`os.environ[name] = ...`, `os.environ.setdefault/update/pop(...)` or `os.putenv(...)`."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
        return getattr(node.value, "attr", "") == "environ"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        changes = node.func.attr in {"setdefault", "update", "pop"}
        return node.func.attr == "putenv" or (changes and getattr(node.func.value, "attr", "") == "environ")
    return False


def test_the_cli_hands_the_flow_parameters_not_environment_variables() -> None:
    """No command writes os.environ for the flow to read back: the flow is given its parameters
    (the one marker of a temporary API is set by orchestration/api.py, for the server's lifetime)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"  # type: ignore[attr-defined]
        for path in (PACKAGE / "cli").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if writes_environ(node)
    ]
    assert offenders == []


def test_the_login_code_never_imports_pymongo_prefect_or_boto3_itself() -> None:
    """boto3 comes in only through adapters.stores.s3, for an s3:// bundle (opened by open_store)."""
    for path in (PACKAGE / "login").glob("*.py"):
        assert not imports_of(path) & set(PIPELINE), path


def test_the_shared_vocabulary_imports_nothing_from_the_layers_above() -> None:
    """settings, naming, imaging, files, faces and profile sit at the bottom: no arrow back up (a
    Settings method once imported the catalog adapter to describe itself). Imports under
    `if TYPE_CHECKING:` are annotations, not arrows at run time."""
    above = ("facelogin.adapters", "facelogin.sync", "facelogin.login", "facelogin.web", "facelogin.cli")
    for name in ("settings", "naming", "imaging", "files", "faces", "profile"):
        path = PACKAGE / f"{name}.py"
        tree = ast.parse(path.read_text())
        typing_only = {
            id(child)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
            for child in ast.walk(block)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and id(node) not in typing_only:
                assert not node.module.startswith(above), f"{path.name}:{node.lineno} imports {node.module}"


def test_only_the_store_factory_knows_the_kinds_of_store() -> None:
    """Callers ask the store (is_transient, url_for, describe): no S3Store or DirStore outside
    adapters/stores, so a new backend is one module there and one contract run."""
    stores = PACKAGE / "adapters" / "stores"
    for path in [*PACKAGE.rglob("*.py"), *sources("flows", "tasks")]:
        if path.is_relative_to(stores):
            continue
        names = {
            n.id if isinstance(n, ast.Name) else n.name if isinstance(n, ast.alias) else n.attr
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Name | ast.alias | ast.Attribute)
        }
        assert not names & {"S3Store", "DirStore", "LocalStore"}, path


def test_the_package_never_imports_flows_tasks_or_deployments() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert not imports_of(path) & {"flows", "tasks", "deployments"}, path


def test_flows_and_tasks_reach_s3_and_mongodb_only_through_the_adapters() -> None:
    for path in sources("flows", "tasks"):
        assert not imports_of(path) & {"boto3", "botocore", "pymongo"}, path


def test_no_sys_path_edits_anywhere() -> None:
    offenders = []
    for path in sources("src", "flows", "tasks", "deployments", "bench", "docs", "tests"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and getattr(node.value, "id", "") == "sys"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_exit_codes_come_from_one_table() -> None:
    """Every command exits through facelogin.exits: no `EXIT_*` table of its own, no bare number."""
    offenders = []
    for path in sources("src", "flows", "tasks", "deployments"):
        if path == PACKAGE / "exits.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            own_table = isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.startswith("EXIT_") for t in node.targets
            )
            bare_number = (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) in {"Exit", "exit"}
                and any(isinstance(a, ast.Constant) and isinstance(a.value, int) for a in node.args)
            )
            if own_table or bare_number:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")  # type: ignore[attr-defined]
    assert offenders == []


def _uv() -> list[str] | None:
    if found := shutil.which("uv"):
        return [found]
    probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True, check=False)
    return [sys.executable, "-m", "uv"] if probe.returncode == 0 else None


def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    uv = _uv()
    if uv is None:
        pytest.skip("uv is not installed: `pip install uv` builds the wheel")
    done = subprocess.run(
        [*uv, "build", "--wheel", "--out-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("facelogin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"facelogin"}
    web = {
        f"facelogin/web/{p.relative_to(PACKAGE / 'web').as_posix()}" for p in (PACKAGE / "web").rglob("*.*")
    }
    assert {n for n in web if "/templates/" in n or "/static/" in n} <= set(names)  # `facelogin web` pages
    assert "facelogin/web/templates/login.html" in names and "facelogin/web/static/login.js" in names


@pytest.mark.slow  # a pytest of its own: in the full suite, not in the tier it checks
def test_the_quick_tier_holds_the_core_adapter_and_login_tests_and_nothing_that_starts_a_flow() -> None:
    """`pytest -m quick` (the README's quick tier) selects by a marker the suite's own conftest adds:
    added after pytest's `-m` deselection, it selected nothing and the command reported no tests."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "quick", "--collect-only", "-q", "-n", "0",
         "-p", "no:randomly"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    folders = {line.split("::")[0].rsplit("/", 1)[0] for line in ids}
    assert {"tests/core", "tests/adapters", "tests/login"} <= folders, folders
    assert not folders & {"tests/flows", "tests/cli", "tests/deploy"}, folders
    assert len(ids) > 300, len(ids)
