"""The docker-compose deployment, checked without Docker or network.

docker-compose.yml must be a valid Compose file (the Compose specification's JSON
schema, draft-07) that agrees with itself and with the code: every setting the API
and the loader read is set, STAC Browser points at the port the API is published
on, secrets come from .env only, images are pinned (pgstac to the pinned pypgstac),
the database and the API have healthchecks. The Dockerfile installs from the same
constraints as the test environment.

Interpolation (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`, `$$`) is resolved the
way Compose resolves it, for two environments: the values users copy
(.env.example) and the defaults in the file (only the required secrets set).
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import json
import re
import shlex
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = ROOT / "pyproject.toml"
MAPPING_EXAMPLE = ROOT / "deploy" / "mapping.example.yaml"
NGINX_CONF = ROOT / "deploy" / "nginx" / "static.conf"
MINIO_INIT = ROOT / "deploy" / "minio" / "init.sh"

API, BROWSER, DATABASE = "stac-api", "stac-browser", "database"
# Services that run the zarr-stac image with a database URL.
DATABASE_CLIENTS = ("migrate", API, "loader")
# Services that crawl the object store with the mapping configuration.
CRAWLERS = ("loader", "static-builder")

# What the API reads from the environment that the deployment must decide
# (stac_api/serving/settings.py); TRANSACTIONS_TOKEN is required when transactions are on.
API_SETTINGS = (
    "DATABASE_URL",
    "STAC_FASTAPI_TITLE",
    "STAC_FASTAPI_DESCRIPTION",
    "STAC_FASTAPI_LANDING_ID",
    "CORS_ORIGINS",
    "ROOT_PATH",
    "MAX_PAGE_SIZE",
    "MAX_BODY_SIZE",
    "STATEMENT_TIMEOUT",
    "ENABLE_TRANSACTIONS_EXTENSIONS",
    "TRANSACTIONS_TOKEN",
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY")
TRUE = {"1", "true", "yes", "on"}


# -- Compose interpolation ----------------------------------------------------------------
class MissingVariable(ValueError):
    pass


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unclosed ${{ in {text!r}")


def interpolate(text: str, env: dict[str, str], seen: set[str] | None = None) -> str:
    """Compose's interpolation of one string; `seen` collects the variables named."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i + 1)
            out.append(_substitute(text[i + 2 : end], env, seen))
            i = end + 1
        elif bare := re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)", text[i:]):
            out.append(_substitute(bare.group(1), env, seen))
            i += bare.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(expression: str, env: dict[str, str], seen: set[str] | None) -> str:
    name, operator, argument = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", expression, re.S).groups()
    if seen is not None:
        seen.add(name)
    value = env.get(name)
    is_set = value is not None and (value != "" or not (operator or "").startswith(":"))
    if operator in ("-", ":-"):
        return value if is_set else interpolate(argument, env, seen)
    if operator in ("?", ":?"):
        if not is_set:
            raise MissingVariable(f"{name}: {argument}")
        return value
    if operator in ("+", ":+"):
        return interpolate(argument, env, seen) if is_set else ""
    return value or ""


def interpolate_all(value, env: dict[str, str], seen: set[str] | None = None):
    if isinstance(value, str):
        return interpolate(value, env, seen)
    if isinstance(value, dict):
        return {key: interpolate_all(item, env, seen) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate_all(item, env, seen) for item in value]
    return value


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


# -- reading the Compose model ---------------------------------------------------------------
def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(entry.partition("=")[::2] for entry in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def published_ports(service: dict) -> dict[int, int]:
    """Container port -> host port, for every published port of the service."""
    ports = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            if entry.get("published"):
                ports[int(entry["target"])] = int(entry["published"])
            continue
        parts = str(entry).split("/")[0].split(":")
        if len(parts) >= 2:
            ports[int(parts[-1])] = int(parts[-2])
    return ports


def command_option(service: dict, option: str) -> str | None:
    command = service.get("command") or []
    command = shlex.split(command) if isinstance(command, str) else command
    for index, word in enumerate(command[:-1]):
        if word == option:
            return command[index + 1]
    return None


def healthcheck_command(service: dict) -> str:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = check.get("test") or []
    return " ".join(test[1:]) if isinstance(test, list) else str(test)


def volume_mounts(service: dict) -> dict[str, str]:
    """Container path -> source (named volume or host path), for short and long syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            mounts[entry["target"]] = entry.get("source", "")
        else:
            source, target = str(entry).split(":")[:2]
            mounts[target] = source
    return mounts


def image_tag(image: str) -> str | None:
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("localhost", "127.0.0.1", "::1")


def url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}[parts.scheme]


def pinned_pypgstac() -> str:
    for line in CONSTRAINTS.read_text().splitlines():
        requirement = line.split("#")[0].strip()
        if requirement and canonicalize_name(Requirement(requirement).name) == "pypgstac":
            (spec,) = Requirement(requirement).specifier
            assert spec.operator == "==", f"pypgstac is not pinned exactly in constraints.txt: {requirement}"
            return spec.version
    raise AssertionError("pypgstac is not pinned in constraints.txt")


# -- the checks (functions, so that a test can show each one catches its mistake) -----------
PINNED_TAG = re.compile(
    r"^(v?\d+\.\d+\.\d+([.-][\w.-]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ|sha256:[0-9a-f]{64})$"
)


def image_problems(compose: dict) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        image = service.get("image")
        if image is None:
            problems.append(f"{name}: no image (a built image needs an explicit name:tag too)")
            continue
        tag = image_tag(image)
        if tag is None or not PINNED_TAG.match(tag):
            problems.append(f"{name}: image {image!r} is not pinned to an exact version")
    return problems


def pgstac_problems(compose: dict, pypgstac_version: str) -> list[str]:
    image = compose["services"][DATABASE]["image"]
    if not image.startswith("ghcr.io/stac-utils/pgstac:"):
        return [f"{DATABASE}: {image!r} is not the official pgstac image"]
    if image_tag(image) != f"v{pypgstac_version}":
        return [f"{DATABASE}: {image!r} does not match pypgstac=={pypgstac_version} (constraints.txt)"]
    return []


def healthcheck_problems(compose: dict) -> list[str]:
    services = compose["services"]
    problems = []
    if "pg_isready" not in healthcheck_command(services[DATABASE]):
        problems.append(f"{DATABASE}: no pg_isready healthcheck")
    api = services[API]
    listening = command_option(api, "--port")
    check = re.search(r"http://(?:127\.0\.0\.1|localhost):(\d+)/_mgmt/health", healthcheck_command(api))
    if check is None:
        problems.append(f"{API}: no healthcheck on /_mgmt/health")
    elif check.group(1) != listening:
        problems.append(f"{API}: healthcheck asks port {check.group(1)}, the API listens on {listening}")
    if listening is None or int(listening) not in published_ports(api):
        problems.append(
            f"{API}: listens on {listening}, which is not the container port it publishes {published_ports(api)}"
        )
    return problems


def browser_problems(compose: dict) -> list[str]:
    services = compose["services"]
    catalog_url = environment(services[BROWSER]).get("SB_catalogUrl", "")
    if not catalog_url.startswith(("http://", "https://")):
        return [f"{BROWSER}: SB_catalogUrl {catalog_url!r} is not an http(s) URL"]
    problems = []
    if is_local(catalog_url):
        api_ports = set(published_ports(services[API]).values())
        if url_port(catalog_url) not in api_ports:
            problems.append(
                f"{BROWSER}: SB_catalogUrl {catalog_url} is not the API's published port {sorted(api_ports)}"
            )
    origins = [origin.strip().rstrip("/") for origin in environment(services[API]).get("CORS_ORIGINS", "").split(",")]
    browser_origins = {
        f"http://{host}:{port}"
        for port in published_ports(services[BROWSER]).values()
        for host in ("localhost", "127.0.0.1")
    }
    if "*" not in origins and not browser_origins & set(origins):
        problems.append(
            f"{API}: CORS_ORIGINS {origins} does not let STAC Browser ({sorted(browser_origins)}) call the API"
        )
    return problems


CHECKS = {
    "images": lambda compose: image_problems(compose),
    "pgstac": lambda compose: pgstac_problems(compose, pinned_pypgstac()),
    "healthchecks": healthcheck_problems,
    "browser": browser_problems,
}


# -- fixtures ----------------------------------------------------------------------------------
RAW = yaml.safe_load(COMPOSE_FILE.read_text())
SERVICES = sorted(RAW["services"])
ENV_EXAMPLE_VALUES = read_env_file(ENV_EXAMPLE)


def required_variables() -> set[str]:
    """Variables the file cannot do without (`${VAR}` / `${VAR:?...}`: no default)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*)?\}", COMPOSE_FILE.read_text()))


ENVIRONMENTS = {
    ".env.example": ENV_EXAMPLE_VALUES,
    "defaults": {name: f"placeholder-{name.lower()}" for name in required_variables()},
}


@pytest.fixture(params=sorted(ENVIRONMENTS))
def env(request) -> dict[str, str]:
    return ENVIRONMENTS[request.param]


@pytest.fixture
def compose(env) -> dict:
    return interpolate_all(RAW, env)


@pytest.fixture(scope="module")
def schema() -> dict:
    if not COMPOSE_SCHEMA.exists():
        pytest.fail(f"the Compose specification's JSON schema is missing: {COMPOSE_SCHEMA}")
    return json.loads(COMPOSE_SCHEMA.read_text())


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [
        (words[0].upper(), words[1].strip() if len(words) > 1 else "")
        for line in joined.splitlines()
        if (words := line.strip().split(None, 1))
    ]


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    start = max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM")
    return instructions[start:]


# -- the Compose file ------------------------------------------------------------------------------
def test_schema_is_draft_07(schema):
    assert "draft-07" in schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("form", ["as written", "interpolated"])
def test_compose_file_is_valid_against_the_compose_specification(schema, form):
    document = RAW if form == "as written" else interpolate_all(RAW, ENV_EXAMPLE_VALUES)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_stack_has_the_services_of_the_deployment():
    assert {
        DATABASE,
        "migrate",
        "object-store",
        "object-store-init",
        API,
        BROWSER,
        "static",
        "loader",
        "static-builder",
    } <= set(SERVICES)
    assert RAW["services"]["loader"]["profiles"] == ["loader"]


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_compose_file_agrees_with_itself(compose, check):
    assert CHECKS[check](compose) == []


BROKEN = {
    # (check, what is broken)
    ("browser", "API published on another port"): lambda c: c["services"][API].update(ports=["9999:8080"]),
    ("browser", "SB_catalogUrl on another port"): lambda c: c["services"][BROWSER]["environment"].update(
        SB_catalogUrl="http://localhost:8090/"
    ),
    ("browser", "CORS without the browser's origin"): lambda c: c["services"][API]["environment"].update(
        CORS_ORIGINS="https://example.org"
    ),
    ("pgstac", "pgstac image of another version"): lambda c: c["services"][DATABASE].update(
        image="ghcr.io/stac-utils/pgstac:v0.9.8"
    ),
    ("images", "a floating tag"): lambda c: c["services"]["static"].update(image="nginx:latest"),
    ("images", "no tag"): lambda c: c["services"][BROWSER].update(image="ghcr.io/radiantearth/stac-browser"),
    ("healthchecks", "no API healthcheck"): lambda c: c["services"][API].pop("healthcheck"),
    ("healthchecks", "API listening on another port"): lambda c: c["services"][API].update(
        command=["serve", "--host", "0.0.0.0", "--port", "9000"]
    ),
    ("healthchecks", "no database healthcheck"): lambda c: c["services"][DATABASE].pop("healthcheck"),
}


@pytest.mark.parametrize("check, mistake", sorted(BROKEN), ids=[mistake for _, mistake in sorted(BROKEN)])
def test_each_check_catches_its_mistake(check, mistake):
    broken = copy.deepcopy(interpolate_all(RAW, ENV_EXAMPLE_VALUES))
    BROKEN[check, mistake](broken)
    assert CHECKS[check](broken), f"the {check} check missed: {mistake}"


def test_pgstac_image_matches_the_pinned_pypgstac():
    assert RAW["services"][DATABASE]["image"] == f"ghcr.io/stac-utils/pgstac:v{pinned_pypgstac()}"


def test_database_keeps_its_data_in_a_volume():
    mounts = volume_mounts(RAW["services"][DATABASE])
    assert mounts.get("/var/lib/postgresql/data") in RAW["volumes"]


@pytest.mark.parametrize("name", ["object-store", "static"])
def test_long_running_services_have_healthchecks(name):
    assert healthcheck_command(RAW["services"][name])


def test_api_sets_every_setting_the_deployment_relies_on(compose):
    from stac_api.serving.settings import Settings

    env = environment(compose["services"][API])
    assert set(API_SETTINGS) <= set(env), f"not set: {sorted(set(API_SETTINGS) - set(env))}"
    assert {name.lower() for name in API_SETTINGS} <= set(Settings.model_fields), (
        "the deployment sets variables the API does not read"
    )
    settings = Settings(**{name.lower(): env[name] for name in API_SETTINGS})  # validates, like the API at start-up
    if env["ENABLE_TRANSACTIONS_EXTENSIONS"].lower() in TRUE:
        assert env["TRANSACTIONS_TOKEN"], "transactions on without a token"
    assert settings.stac_fastapi_title and settings.stac_fastapi_landing_id


@pytest.mark.parametrize("name", DATABASE_CLIENTS)
def test_database_url_reaches_the_database_service_with_its_credentials(compose, name):
    database = environment(compose["services"][DATABASE])
    url = urlsplit(environment(compose["services"][name])["DATABASE_URL"])
    assert url.scheme in ("postgresql", "postgres")
    assert url.hostname == DATABASE and (url.port or 5432) == 5432
    assert (url.username, url.password, url.path.lstrip("/")) == (
        database["POSTGRES_USER"],
        database["POSTGRES_PASSWORD"],
        database["POSTGRES_DB"],
    )


def test_api_starts_after_a_healthy_database_and_one_migration():
    depends = RAW["services"][API]["depends_on"]
    assert depends[DATABASE]["condition"] == "service_healthy"
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert RAW["services"]["migrate"]["depends_on"][DATABASE]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["loader", "static-builder", "samples"])
def test_jobs_wait_for_the_bucket(name):
    assert RAW["services"][name]["depends_on"]["object-store-init"]["condition"] == "service_completed_successfully"
    assert RAW["services"][name].get("profiles"), "a job must not start with `docker compose up`"


def zarr_stac_services() -> list[str]:
    image = RAW["services"][API]["image"]
    return [
        name
        for name in SERVICES
        if RAW["services"][name].get("image") == image and "entrypoint" not in RAW["services"][name]
    ]


@pytest.mark.parametrize("name", zarr_stac_services())
def test_commands_are_zarr_stac_invocations(compose, name):
    from typer.testing import CliRunner

    from zarr_stac.cli import app

    service = compose["services"][name]
    assert service["build"]["context"] == "." and (ROOT / service["build"].get("dockerfile", "Dockerfile")).exists()
    result = CliRunner().invoke(app, [*service["command"], "--help"], env=environment(service))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", CRAWLERS)
def test_crawlers_get_the_mapping_configuration_and_everything_it_names(compose, name, monkeypatch):
    from zarr_stac.loaders.config import load_config

    service = compose["services"][name]
    env = environment(service)
    config_path = env["ZARR_STAC_CONFIG"]
    source = volume_mounts(service)[config_path]
    assert (ROOT / source).is_file(), f"{name} mounts {source}, which does not exist"
    seen: set[str] = set()
    interpolate_all(yaml.safe_load((ROOT / source).read_text()), {}, seen)
    assert seen <= set(env), f"{source} uses variables {name} does not set: {sorted(seen - set(env))}"
    for variable in seen:
        monkeypatch.setenv(variable, env[variable])
    config = load_config(ROOT / source)
    # The crawl goes to the object store inside the stack; readers are told the
    # endpoint as published on the host.
    object_store_ports = published_ports(compose["services"]["object-store"])
    endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
    assert endpoint.hostname == "object-store" and endpoint.port in object_store_ports
    for source_config in config.sources:
        assert source_config.storage.endpoint_url == env["AWS_ENDPOINT_URL"]
        public_endpoint = (source_config.public_storage_options or {}).get("endpoint_url")
        if public_endpoint and is_local(public_endpoint):
            assert url_port(public_endpoint) == object_store_ports[endpoint.port]


def test_loader_reads_its_settings_from_the_environment():
    """The variables the loader's environment sets are the ones `zarr-stac load` reads."""
    import typer.main

    from zarr_stac.cli import app

    load = typer.main.get_command(app).commands["load"]
    envvars = {param.name: param.envvar for param in load.params}
    assert envvars["config"] == "ZARR_STAC_CONFIG" and envvars["dsn"] == "DATABASE_URL"
    env = environment(RAW["services"]["loader"])
    assert {
        "ZARR_STAC_CONFIG",
        "DATABASE_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    } <= set(env)
    assert "AWS_ENDPOINT_URL" in envvars["endpoint_url"] and "AWS_DEFAULT_REGION" in envvars["region"]


def test_example_mapping_places_every_sample_store(monkeypatch):
    from zarr_stac.common.storage import strip_url
    from zarr_stac.loaders.config import load_config
    from zarr_stac.samples import samples

    loader = environment(interpolate_all(RAW, ENV_EXAMPLE_VALUES)["services"]["loader"])
    for name, value in loader.items():
        monkeypatch.setenv(name, value)
    config = load_config(MAPPING_EXAMPLE)
    bucket = f"s3://{loader['S3_BUCKET']}"
    for sample in samples():
        url = f"{bucket}/{sample.path}"
        sources = [source for source in config.sources if url.startswith(strip_url(source.url) + "/")]
        assert len(sources) == 1, f"{url} is crawled by {len(sources)} sources"
        placement, _ = sources[0].place(strip_url(sources[0].url), url)
        assert not placement.item_id.endswith(".zarr"), placement


def test_samples_job_code_compiles_and_its_imports_exist():
    code = RAW["services"]["samples"]["command"][0]
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_object_store_init_gets_every_variable_its_script_reads():
    service = RAW["services"]["object-store-init"]
    assert volume_mounts(service) == {"/init.sh": "./deploy/minio/init.sh"}
    script = MINIO_INIT.read_text()
    assigned = set(re.findall(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=", script, re.M))
    read = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", script)) - assigned
    assert read <= set(environment(service)), f"not set: {sorted(read - set(environment(service)))}"
    assert environment(service)["S3_INTERNAL_URL"] == "http://object-store:9000"


def test_static_catalogue_is_built_into_the_volume_nginx_serves_with_cors(compose):
    builder, static = compose["services"]["static-builder"], compose["services"]["static"]
    output = command_option(builder, "--output") or command_option(builder, "-o")
    volume = volume_mounts(builder)[output]
    assert volume in compose["volumes"], "the catalogue must go to a named volume"
    served = {target for target, source in volume_mounts(static).items() if source == volume}
    conf = NGINX_CONF.read_text()
    assert volume_mounts(static)["/etc/nginx/conf.d/default.conf"] == "./deploy/nginx/static.conf"
    assert re.search(r"^\s*root\s+(\S+);", conf, re.M).group(1) in served
    assert re.search(r'add_header\s+Access-Control-Allow-Origin\s+"\*"\s+always;', conf)
    listen = int(re.search(r"^\s*listen\s+(\d+);", conf, re.M).group(1))
    assert listen in published_ports(static)


def test_no_two_services_publish_the_same_host_port(compose):
    published = [port for service in compose["services"].values() for port in published_ports(service).values()]
    assert len(published) == len(set(published)), published


# -- secrets and .env ---------------------------------------------------------------------------------
def secret_settings():
    for name in SERVICES:
        for key, value in environment(RAW["services"][name]).items():
            if SECRET_NAME.search(key):
                yield name, key, value


@pytest.mark.parametrize(
    "service, key, value", list(secret_settings()), ids=[f"{s}-{k}" for s, k, _ in secret_settings()]
)
def test_secrets_come_from_the_env_file_only(service, key, value):
    reference = re.fullmatch(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?\?[^}]*|:-)?\}", value)
    assert reference, f"{service}: {key} must be exactly ${{VAR}} or ${{VAR:?...}} (no literal, no default): {value!r}"


def test_database_url_takes_its_password_from_the_env_file():
    for name in DATABASE_CLIENTS:
        url = environment(RAW["services"][name])["DATABASE_URL"]
        assert re.search(r":\$\{POSTGRES_PASSWORD(:\?[^}]*)?\}@", url), url


def test_env_example_lists_exactly_the_variables_the_compose_file_uses():
    used: set[str] = set()
    interpolate_all(RAW, ENV_EXAMPLE_VALUES, used)
    assert set(ENV_EXAMPLE_VALUES) == used, (
        f"missing: {sorted(used - set(ENV_EXAMPLE_VALUES))}, unused: {sorted(set(ENV_EXAMPLE_VALUES) - used)}"
    )


def test_env_example_holds_placeholders_not_secrets():
    for name, value in ENV_EXAMPLE_VALUES.items():
        if SECRET_NAME.search(name) and not name.endswith("ACCESS_KEY"):
            assert value == "" or value.startswith("change-me"), f"{name}={value!r} looks like a real secret"


def test_env_file_is_ignored_by_git_and_docker():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in DOCKERIGNORE.read_text().split()


# -- the image ------------------------------------------------------------------------------------
def test_dockerfile_installs_from_the_constraints_without_test_extras():
    runs = [
        arguments
        for instruction, arguments in dockerfile_instructions()
        if instruction == "RUN" and "pip install" in arguments
    ]
    assert runs, "the Dockerfile installs nothing with pip"
    for run in runs:
        for install in re.findall(r"pip install[^&;|]*", run):
            words = install.split()
            assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt", f"not constrained: {install}"
            assert "." in words and "-e" not in words and "[test]" not in install, (
                f"not the plain distribution: {install}"
            )
    copied = " ".join(arguments for instruction, arguments in dockerfile_instructions() if instruction == "COPY")
    for needed in ("constraints.txt", "pyproject.toml", "README.md"):
        assert needed in copied.split(), f"{needed} is not copied into the image"


def test_dockerfile_copies_every_package_of_the_distribution():
    """The top-level folder of every package (`package-dir` maps `zarr_stac.loaders` to `loaders/`)."""
    setuptools = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]
    folders = setuptools.get("package-dir", {})

    def folder_of(package: str) -> str:
        for name, folder in sorted(folders.items(), key=lambda pair: -len(pair[0])):
            if package == name or package.startswith(name + "."):
                return folder
        return package.replace(".", "/")

    copied = [
        arguments.split()[0].rstrip("/")
        for instruction, arguments in dockerfile_instructions()
        if instruction == "COPY" and not arguments.startswith("--from")
    ]
    assert {folder_of(package).split("/")[0] for package in setuptools["packages"]} <= set(copied)


def test_image_is_a_pinned_slim_python_of_the_test_environments_version():
    bases = [arguments.split()[0] for instruction, arguments in dockerfile_instructions() if instruction == "FROM"]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for base in bases:
        assert re.fullmatch(rf"python:{re.escape(version)}\.\d+-slim(-\w+)?", base), (
            f"{base}: not a pinned python:{version}.x-slim"
        )


def test_image_runs_the_cli_as_an_unprivileged_user():
    stage = final_stage()
    users = [arguments for instruction, arguments in stage if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    entrypoint = [json.loads(arguments) for instruction, arguments in stage if instruction == "ENTRYPOINT"]
    assert entrypoint == [["zarr-stac"]]
    assert "zarr-stac" in tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    (command,) = [json.loads(arguments) for instruction, arguments in stage if instruction == "CMD"]
    assert command[0] == "serve" and command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] in [
        arguments for instruction, arguments in stage if instruction == "EXPOSE"
    ]
    assert any(instruction == "HEALTHCHECK" and "/_mgmt/health" in arguments for instruction, arguments in stage)


def test_every_runtime_dependency_is_pinned_in_the_constraints():
    """`pip install -c constraints.txt .` then installs exactly what the tests ran with."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if requirement := line.split("#")[0].strip():
            parsed = Requirement(requirement)
            pins[canonicalize_name(parsed.name)] = parsed.specifier
    closure, todo, seen = set(), [("zarr-stac", frozenset())], set()
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        dist = distribution(name)
        closure.add(canonicalize_name(dist.metadata["Name"]))
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in extras or {""}
            ):
                todo.append((requirement.name, frozenset(requirement.extras)))
    closure.discard("zarr-stac")
    unpinned = sorted(name for name in closure if name not in pins or [s.operator for s in pins[name]] != ["=="])
    assert not unpinned, f"installed in the image without an exact pin in constraints.txt: {unpinned}"


def test_dockerignore_keeps_secrets_and_environments_out_and_build_inputs_in():
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for excluded in (".env", ".venv", ".git", ".data"):
        assert excluded in patterns, f"{excluded} would be sent to the Docker daemon"
    copied = [
        source.rstrip("/")
        for instruction, arguments in dockerfile_instructions()
        if instruction == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    for source in copied:
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in patterns if not pattern.startswith("!")), (
            f"{source} is copied but .dockerignore excludes it"
        )
