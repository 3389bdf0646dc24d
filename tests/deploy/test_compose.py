"""docker-compose.yml, checked as far as can be done without a Docker engine.

The file is parsed with PyYAML (anchors and merge keys resolved), validated against the
Compose Specification's JSON schema (compose-spec.json beside this file, see README.md
here), and then held to what Docker would find out only at `docker compose up`: build
contexts, bind mounts, named volumes, service names, the .env variables, the Airflow
connections and the pipeline's settings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from pydantic import BaseModel

from pipeline.config import PathsConfig, Settings, load_settings
from tests.deploy.support import (
    COMPOSE_SCHEMA,
    REPO,
    environment,
    interpolate_tree,
    load_compose,
    parse_dockerfile,
    read_env_file,
    references,
    walk_strings,
)

AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
# Services that run once and exit; every other one runs for good.
ONE_SHOT = {"pipeline", "env-check", "data-init", "airflow-init"}
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
CONNECTIONS = {"RFM_POSTGRES": "postgres", "RFM_WEBHOOK": "http", "RFM_SMTP": "smtp"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file()


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any], env_example: dict[str, str]) -> dict[str, Any]:
    """The file as `docker compose config` would see it with .env copied from the example."""
    return interpolate_tree(compose, env_example)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def services(resolved: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resolved["services"]  # type: ignore[no-any-return]


def airflow_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run Airflow itself (not its database)."""
    return {name: services[name] for name in [*AIRFLOW_COMPONENTS, "airflow-init"]}


def test_anchors_and_merge_keys_resolve(compose: dict[str, Any]) -> None:
    common = compose["x-airflow-common"]
    for name in [*AIRFLOW_COMPONENTS, "airflow-init"]:
        service = compose["services"][name]
        assert service["image"] == common["image"], name
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor", name
        assert service["volumes"] == common["volumes"], name


@pytest.mark.parametrize("interpolated", [False, True], ids=["as-written", "interpolated"])
def test_matches_the_compose_specification(
    compose: dict[str, Any], resolved: dict[str, Any], interpolated: bool
) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(resolved if interpolated else compose), key=lambda e: e.json_path
    )
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_the_schema_catches_mistakes(compose: dict[str, Any]) -> None:
    """The vendored schema is strict enough to fail a misspelt key and a bad condition."""
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["pipeline"]["volume"] = broken["services"]["pipeline"].pop("volumes")
    broken["services"]["airflow-init"]["depends_on"]["data-init"]["condition"] = "service_done"
    messages = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(broken)]
    assert any("'volume'" in message for message in messages), messages
    assert any("service_done" in message for message in messages), messages


def test_build_contexts_and_dockerfiles_exist(services: dict[str, dict[str, Any]]) -> None:
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    assert built, "no service is built from the repository"
    for name, build in built.items():
        context = REPO / build["context"]
        assert context.is_dir(), f"{name}: build context {context} is missing"
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        assert services[name]["image"] == "rfm-pipeline:latest", name
    for name, service in services.items():
        if "build" not in service:
            image = service["image"]
            tag = image.rpartition(":")[2]
            assert ":" in image and tag != "latest", f"{name}: pin the image's tag ({image})"


def _volumes(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, source, target) of each volume, from the short or the long syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            mounts.append((volume["type"], volume.get("source", ""), volume["target"]))
            continue
        source, _, rest = volume.partition(":")
        target = rest.split(":")[0]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append((kind, source, target))
    return mounts


def test_bind_mounts_are_the_data_folder_or_existing_files(
    services: dict[str, dict[str, Any]],
) -> None:
    data = REPO / "data"
    for name, service in services.items():
        for kind, source, target in _volumes(service):
            if kind != "bind":
                continue
            host = (REPO / source).resolve()
            assert host.is_relative_to(data) or host.is_file(), (
                f"{name}: bind mount {source} is neither under ./data nor an existing file"
            )
            assert PurePosixPath(target).is_absolute(), f"{name}: {target}"


def test_named_volumes_are_declared_and_used(
    resolved: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    declared = set(resolved.get("volumes") or {})
    used = {
        source
        for service in services.values()
        for kind, source, _ in _volumes(service)
        if kind == "volume"
    }
    assert used <= declared, f"undeclared volumes: {sorted(used - declared)}"
    assert declared <= used, f"declared but unused volumes: {sorted(declared - used)}"


def test_depends_on_names_services_with_the_right_kind(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            condition = spec["condition"]
            target = services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency}'s health"
            elif condition == "service_completed_successfully":
                assert dependency in ONE_SHOT, f"{name} waits for {dependency} to exit"
                assert "restart" not in target, dependency

    # No cycle: every service can be started after the ones it depends on.
    started: set[str] = set()
    while len(started) < len(services):
        ready = {
            name
            for name, service in services.items()
            if name not in started and set(service.get("depends_on") or {}) <= started
        }
        assert ready, f"depends_on cycle among {sorted(set(services) - started)}"
        started |= ready


def test_long_running_services_have_healthchecks_and_restart(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) >= ONE_SHOT
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert service.get("restart") == "always", name


def test_airflow_components_with_local_executor(
    services: dict[str, dict[str, Any]], resolved: dict[str, Any]
) -> None:
    commands = {
        name: service.get("command") for name, service in airflow_services(services).items()
    }
    for name, command in AIRFLOW_COMPONENTS.items():
        assert commands.get(name) == [command], name
    for name, service in airflow_services(services).items():
        env = environment(service)
        assert service["entrypoint"] in (["airflow"], ["/bin/bash", "-c"]), name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"], name
        db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme == "postgresql+psycopg" and db.hostname == "airflow-postgres", name
        assert (
            env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"]
            == (env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        )
        execution = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert execution.hostname == "airflow-apiserver" and execution.path == "/execution/"
        assert execution.port == int(services["airflow-apiserver"]["ports"][0].split(":")[-1])
        depends = service["depends_on"]
        assert depends["airflow-postgres"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully"
    # No broker: LocalExecutor runs the tasks inside the scheduler's container.
    text = json.dumps(resolved).lower()
    assert "redis" not in text and "celery" not in text
    # Nothing is installed when a container starts.
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in json.dumps(resolved)


def test_logins_use_the_fab_auth_manager(services: dict[str, dict[str, Any]]) -> None:
    """A production login (users and roles in the metadata database), not the simple
    auth manager Airflow meant for development; tests/deploy/test_fab_login.py logs in."""
    for name in AIRFLOW_COMPONENTS:
        env = environment(services[name])
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
        assert env["AIRFLOW__API__SECRET_KEY"], name
    text = json.dumps(services)
    assert "SIMPLE_AUTH_MANAGER" not in text
    script = services["airflow-init"]["command"][0]
    assert script.index("airflow db migrate") < script.index("airflow users create")
    assert "airflow users reset-password" in script


def test_variables_come_from_env_example(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    """Every ${VAR} is a key of .env.example, every key is used, required ones are set."""
    used = {ref.name: ref for text in walk_strings(compose) for ref in references(text)}
    assert set(used) <= set(env_example), (
        f"not in .env.example: {sorted(set(used) - set(env_example))}"
    )
    assert set(env_example) <= set(used), (
        f"unused in compose: {sorted(set(env_example) - set(used))}"
    )
    for name, ref in used.items():
        if ref.operator in (":?", "?"):
            assert env_example[name], f"{name} is required but empty in .env.example"


def test_env_example_ships_no_secrets(env_example: dict[str, str]) -> None:
    for name, value in env_example.items():
        if any(word in name for word in ("PASSWORD", "SECRET")):
            assert value in ("", "change-me"), f"{name}: ship a placeholder, not a secret"
    assert (REPO / ".gitignore").read_text(encoding="utf-8").splitlines().count(".env") == 1


def _parse_connections(uris: dict[str, str], tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Airflow's own parser (URI or JSON form), in a subprocess with a scratch AIRFLOW_HOME."""
    code = """
import json, sys
from airflow.models.connection import Connection
out = {}
for conn_id, value in json.load(sys.stdin).items():
    if value.lstrip().startswith("{"):
        conn = Connection.from_json(value, conn_id=conn_id)
    else:
        conn = Connection(conn_id=conn_id, uri=value)
    out[conn_id] = {
        "conn_type": conn.conn_type, "host": conn.host, "port": conn.port,
        "login": conn.login, "password": conn.password, "schema": conn.schema,
        "extra": conn.extra_dejson,
    }
print(json.dumps(out))
"""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "RFM_"))
    }
    env |= {"AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(uris),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_airflow_connections_parse(
    services: dict[str, dict[str, Any]], env_example: dict[str, str], tmp_path: Path
) -> None:
    env = environment(services["airflow-scheduler"])
    uris = {
        name.removeprefix("AIRFLOW_CONN_").lower(): value
        for name, value in env.items()
        if name.startswith("AIRFLOW_CONN_")
    }
    assert set(uris) == {name.lower() for name in CONNECTIONS}
    # The empty .env.example values (no webhook, no SMTP) and a filled-in deployment.
    filled = env_example | {
        "ALERTS_WEBHOOK_URL": "https://crm.example.com/hooks/rfm?source=pipeline",
        "ALERTS_SMTP_HOST": "smtp.example.com",
        "ALERTS_SMTP_USER": "alerts",
    }
    filled_env = environment(
        interpolate_tree(load_compose(), filled)["services"]["airflow-scheduler"]
    )
    cases = [(env_example, env), (filled, filled_env)]
    parsed = _parse_connections(
        {
            f"case{case}__{name.removeprefix('AIRFLOW_CONN_').lower()}": value
            for case, (_, scheduler_env) in enumerate(cases)
            for name, value in scheduler_env.items()
            if name.startswith("AIRFLOW_CONN_")
        },
        tmp_path,
    )
    for case, (variables, scheduler_env) in enumerate(cases):
        conns = {
            key.partition("__")[2]: conn
            for key, conn in parsed.items()
            if key.startswith(f"case{case}__")
        }
        for name, conn_type in CONNECTIONS.items():
            assert conns[name.lower()]["conn_type"] == conn_type, conns[name.lower()]

        postgres = conns["rfm_postgres"]
        assert (postgres["host"], postgres["port"]) == ("bi-postgres", 5432)
        assert postgres["login"] == variables["BI_POSTGRES_PUBLISHER_USER"]
        assert postgres["password"] == variables["BI_POSTGRES_PUBLISHER_PASSWORD"]
        assert postgres["schema"] == variables["BI_POSTGRES_DB"]
        # The DAGs' connection and the pipeline's own setting name the same database.
        url = urlsplit(scheduler_env["RFM_PUBLISH__POSTGRES_URL"])
        assert (url.hostname, url.port, url.username, url.path.lstrip("/")) == (
            postgres["host"],
            postgres["port"],
            postgres["login"],
            postgres["schema"],
        )

        webhook = conns["rfm_webhook"]
        assert webhook["host"] == variables["ALERTS_WEBHOOK_URL"]
        assert webhook["password"] == variables["ALERTS_WEBHOOK_SECRET"]

        smtp = conns["rfm_smtp"]
        assert smtp["host"] == variables["ALERTS_SMTP_HOST"]
        assert smtp["port"] == int(variables["ALERTS_SMTP_PORT"])
        assert smtp["login"] == variables["ALERTS_SMTP_USER"]
        extra = {key: str(value).lower() for key, value in smtp["extra"].items()}
        assert extra == {"disable_ssl": "true", "disable_tls": "false"}


def _field(model: type[BaseModel], path: list[str]) -> bool:
    """Does the dotted path name a field of the settings model (nested sections)?"""
    name, *rest = path
    info = model.model_fields.get(name)
    if info is None:
        return False
    if not rest:
        return True
    annotation = info.annotation
    return (
        isinstance(annotation, type)
        and issubclass(annotation, BaseModel)
        and _field(annotation, rest)
    )


def test_rfm_variables_are_settings(
    services: dict[str, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each RFM_* name maps to a Settings field, and the values load as the pipeline's."""
    for name, service in services.items():
        rfm = {key: value for key, value in environment(service).items() if key.startswith("RFM_")}
        for key in rfm:
            path = key.removeprefix("RFM_").lower().split("__")
            assert _field(Settings, path), f"{name}: {key} is not a setting"
        for key in list(os.environ):
            if key.startswith("RFM_"):
                monkeypatch.delenv(key)
        for key, value in rfm.items():
            monkeypatch.setenv(key, value)
        monkeypatch.chdir(tmp_path)
        load_settings()  # raises ConfigError on a bad value


def test_pipeline_paths_agree_between_services(services: dict[str, dict[str, Any]]) -> None:
    """Airflow's RFM_PATHS__* name every path, under the ./data mount, and the pipeline
    service's defaults (relative to the image's WORKDIR) resolve to the same folders."""
    runtime = parse_dockerfile()[-1]
    defaults = PathsConfig().resolved_against(Path(runtime.workdir))
    scheduler = environment(services["airflow-scheduler"])
    for field_name in PathsConfig.model_fields:
        value = scheduler[f"RFM_PATHS__{field_name.upper()}"]
        assert Path(value) == getattr(defaults, field_name), field_name
        assert PurePosixPath(value).is_relative_to("/app/data"), field_name
    assert not any(key.startswith("RFM_PATHS__") for key in environment(services["pipeline"]))
    for name in ["pipeline", *AIRFLOW_COMPONENTS]:
        assert ("bind", "./data", "/app/data") in _volumes(services[name]), name


def test_dags_folder_is_where_the_dockerfile_copies_dags(
    services: dict[str, dict[str, Any]],
) -> None:
    runtime = parse_dockerfile()[-1]
    [dags] = [copy for copy in runtime.copies if copy.sources == ["dags"]]
    target = str(dags.target("dags"))
    assert runtime.env["AIRFLOW__CORE__DAGS_FOLDER"] == target
    for name, service in airflow_services(services).items():
        assert environment(service)["AIRFLOW__CORE__DAGS_FOLDER"] == target, name
        # A bind mount over the DAGs would hide the image's copy.
        assert all(t != target for _, _, t in _volumes(service)), name


def test_bi_postgres_is_the_publish_target(services: dict[str, dict[str, Any]]) -> None:
    bi = services["bi-postgres"]
    env = environment(bi)
    assert bi["ports"] == ["5432:5432"]
    url = urlsplit(environment(services["airflow-scheduler"])["RFM_PUBLISH__POSTGRES_URL"])
    assert url.hostname == "bi-postgres" and url.port == 5432
    assert url.username == env["BI_PUBLISHER_USER"]
    assert url.password == env["BI_PUBLISHER_PASSWORD"]
    assert url.path == f"/{env['POSTGRES_DB']}"
    assert env["BI_READER_ROLE"] == Settings().publish.postgres_reader_role
    init_scripts = [s for k, s, t in _volumes(bi) if t.startswith("/docker-entrypoint-initdb.d/")]
    assert init_scripts == ["./scripts/bi-postgres-init.sh"]
    # The metadata database stays inside the compose network.
    assert "ports" not in services["airflow-postgres"]


def _env_check(compose: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """env-check's script as its container runs it: bash, compose's $$ unescaped, the
    service's environment interpolated from ``env`` (what .env would hold)."""
    service = interpolate_tree(compose, env)["services"]["env-check"]
    assert service["entrypoint"] == ["/bin/bash", "-c"]
    script = service["command"][0].replace("$$", "$")
    return subprocess.run(
        ["bash", "-c", script],
        env={"PATH": os.environ["PATH"], **service["environment"]},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_placeholders_are_refused_before_anything_starts(
    compose: dict[str, Any], env_example: dict[str, str], services: dict[str, dict[str, Any]]
) -> None:
    refused = _env_check(compose, env_example)
    assert refused.returncode == 1
    named = refused.stderr.split(":", 2)[-1].split()
    assert sorted(named) == sorted(k for k, v in env_example.items() if v == "change-me")
    filled = {k: ("s3cret-" + k if v == "change-me" else v) for k, v in env_example.items()}
    assert _env_check(compose, filled).returncode == 0, _env_check(compose, filled).stderr
    # Every service waits for it, directly or through another.
    for name in ("data-init", "airflow-postgres", "bi-postgres"):
        condition = services[name]["depends_on"]["env-check"]["condition"]
        assert condition == "service_completed_successfully", name


def test_airflow_does_not_wait_for_the_bi_database(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name.startswith("airflow-") and name != "airflow-postgres":
            assert "bi-postgres" not in service.get("depends_on", {}), name
