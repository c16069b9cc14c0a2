"""What travels with a submitted job: the working_dir, the runtime_env and the entrypoint.

The working_dir is a filtered copy of the project folder (the code, jobs/, eval suites; no `.git`,
`runs/`, `wandb/`, caches, large files or what the top-level .gitignore / .rayignore name) plus the
validated job YAML at `.rtrain/<kind>.yaml`, so the cluster runs exactly what was validated here.
The rtrain package itself is always included (copied from the importable package when the project
folder does not hold it): Ray puts the working_dir first on every worker's PYTHONPATH, so the
cluster runs this rtrain.

Secrets travel only when asked: each `--env NAME` is read from the caller's environment and placed in
`runtime_env["env_vars"]`, never written into the package or printed. Ray keeps env_vars in the job record,
readable by anyone with dashboard or Jobs API access, so a cluster-side secret (KubeRay `secretKeyRef`, see
README "Secrets") is the better way. Credential files (.env, .netrc, .ssh/, .aws/, *.pem, id_rsa, ...) are
never packaged.
"""

from __future__ import annotations

import base64
import fnmatch
import os
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtrain.cluster.spec import JobSpec
from rtrain.config.load import ConfigError

CONFIG_DIR = ".rtrain"
DEFAULT_EXCLUDES = (
    ".git",
    ".hg",
    ".svn",
    CONFIG_DIR,
    "runs",
    "wandb",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".venv",
    "venv",
    ".tox",
    "node_modules",
    "build",
    "dist",
    "*.egg-info",
    ".ipynb_checkpoints",
    ".setup-done",
    ".DS_Store",
    ".gitignore",
    ".rayignore",  # the ignore files are applied here, not shipped
    # credentials never travel, whatever the ignore files say
    ".env",
    ".env.*",
    ".netrc",
    ".git-credentials",
    ".pypirc",
    ".ssh",
    ".aws",
    ".gnupg",
    ".docker",
    ".kube",
    "*.pem",
    "*.key",
    "*.p12",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "credentials.json",
)
IGNORE_FILES = (".gitignore", ".rayignore")
KNOWN_SECRETS = ("WANDB_API_KEY", "HF_TOKEN")  # masked in printed text; sent to a job only with --env NAME
MAX_PACKAGE_BYTES = 100 * 1024**2


@dataclass
class Package:
    """The staged working_dir and what was left out of it."""

    directory: Path
    config_path: str  # relative to the working_dir
    files: int = 0
    bytes: int = 0
    skipped_large: list[str] = field(default_factory=list)


def _excluded(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)


def ignore_matcher(project: Path) -> Callable[[str], bool]:
    """The project's top-level .gitignore / .rayignore as a matcher of relative paths (dirs end in '/').

    Ray applies the same files when it uploads a working_dir; applying them while copying keeps
    ignored data out of the copy and out of the size check. Uses the gitwildmatch parser Ray ships.
    """
    lines: list[str] = []
    for name in IGNORE_FILES:
        if (project / name).is_file():
            lines += (project / name).read_text().splitlines()
    if not lines:
        return lambda rel: False
    try:
        from ray._private.thirdparty.pathspec import PathSpec
    except ImportError:  # a Ray without its vendored pathspec: the excludes above still apply
        return lambda rel: False
    return PathSpec.from_lines("gitwildmatch", lines).match_file


def stage_working_dir(
    spec: JobSpec,
    project: Path,
    dest: Path,
    excludes: Sequence[str] = DEFAULT_EXCLUDES,
    max_file_bytes: int = 10 * 1024**2,
    max_total_bytes: int = MAX_PACKAGE_BYTES,
) -> Package:
    """Copy `project` (filtered) into `dest`, add rtrain if missing and the job YAML; ConfigError when too big."""
    import rtrain

    if not project.is_dir():
        raise ConfigError(f"--project {project}: no such folder (the folder shipped as the job's working_dir)")
    package = Package(directory=dest, config_path=f"{CONFIG_DIR}/{spec.kind}.yaml")
    if spec.yaml_text is None:
        shipped_path(spec, project)  # a Tune file outside the project fails before anything is copied
    roots = [(project, dest, ignore_matcher(project))]
    if not (project / "rtrain" / "__init__.py").is_file():
        roots.append((Path(rtrain.__file__).parent, dest / "rtrain", lambda rel: False))
    for src_root, dst_root, ignored in roots:
        for dirpath, dirnames, filenames in os.walk(src_root):
            rel = Path(dirpath).relative_to(src_root)
            dirnames[:] = sorted(
                d for d in dirnames if not _excluded(d, excludes) and not ignored(f"{(rel / d).as_posix()}/")
            )
            for name in sorted(filenames):
                src = Path(dirpath) / name
                if (
                    _excluded(name, excludes)
                    or ignored((rel / name).as_posix())
                    or src.is_symlink()
                    or not src.is_file()
                ):
                    continue
                size = src.stat().st_size
                if size > max_file_bytes:
                    package.skipped_large.append(f"{(rel / name).as_posix()} ({size / 1024**2:.1f} MiB)")
                    continue
                target = dst_root / rel / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
                package.files += 1
                package.bytes += size
    if package.bytes > max_total_bytes:
        raise ConfigError(
            f"--project {project}: {package.bytes / 1024**2:.0f} MiB to ship as the working_dir, over "
            f"{max_total_bytes / 1024**2:.0f} MiB: keep data and models on the cluster's storage, or add "
            "--exclude PATTERN for what the job does not need"
        )
    if spec.yaml_text is None:  # a Tune file runs from its place in the project (its base job may be relative to it)
        package.config_path = shipped_path(spec, project)
        if not (dest / package.config_path).is_file():
            raise ConfigError(
                f"{spec.source} was left out of the working_dir (an exclude or ignore rule, or over the size "
                "limit): the cluster could not run it; move it or adjust --exclude / --max-file-mb"
            )
        return package
    config = dest / package.config_path
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(spec.yaml_text)
    return package


def shipped_path(spec: JobSpec, project: Path) -> str:
    """Where the job's config sits in the working_dir: `.rtrain/<kind>.yaml`, or a Tune file's own project path."""
    if spec.yaml_text is not None:
        return f"{CONFIG_DIR}/{spec.kind}.yaml"
    try:
        return spec.source.resolve().relative_to(project.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            f"{spec.source} is outside --project {project}: a Tune file runs from the shipped project "
            "(its base job may be named relative to it); submit from the folder that holds it"
        ) from None


def passthrough_env(names: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's values of `names` that are set (never logged; only handed to the Ray SDK)."""
    return {name: environ[name] for name in dict.fromkeys(names) if environ.get(name)}


def entrypoint(spec: JobSpec, config_path: str, inline: bool = False, sync_every: float = 300.0) -> str:
    """The shell command the cluster runs: `python -m rtrain.cli KIND CONFIG`, wrapped when needed.

    `inline` carries the YAML inside the command (image jobs have no working_dir); a URI output
    adds the upload wrapper.
    """
    command = ["python", "-m", "rtrain.cli", spec.kind, "{config}" if inline else config_path, *spec.args]
    wrapper: list[str] = []
    if inline:
        text = spec.yaml_text if spec.yaml_text is not None else spec.source.read_text()
        b64 = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii")
        wrapper += ["--config-b64", b64, "--config-file", Path(config_path).name]
    if spec.staging is not None and spec.outputs is not None:
        wrapper += ["--sync-from", spec.staging, "--sync-to", spec.outputs, "--sync-every", f"{sync_every:g}"]
    if wrapper:
        command = ["python", "-m", "rtrain.cluster.entry", *wrapper, "--", *command]
    return shlex.join(command)


def read_requirements(items: Sequence[str]) -> list[str]:
    """`--pip` values: requirement strings, or requirements files (one requirement per line)."""
    out: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_file():
            for line in path.read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line:
                    out.append(line)
        else:
            out.append(item)
    return out


def runtime_env(
    working_dir: Path | None,
    env_vars: Mapping[str, str],
    pip: Sequence[str] = (),
    image: str | None = None,
) -> dict[str, Any]:
    """The job's runtime_env: working_dir (+ pip), or a container image; env_vars either way."""
    env: dict[str, Any] = {}
    if image:
        if pip:
            raise ConfigError(
                "--image and --pip cannot be combined: Ray's image_uri takes no other packages; "
                "bake them into the image"
            )
        env["image_uri"] = image
    elif working_dir is not None:
        env["working_dir"] = str(working_dir)
        if pip:
            env["pip"] = {"packages": list(pip), "pip_check": False}
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env
