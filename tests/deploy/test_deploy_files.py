"""Checks of the deployment files and the shipped sample DRG catalogue.

These tests read files only: no Docker, no cluster, no network.
"""

from __future__ import annotations

import base64
import csv
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SAMPLE_DIR = ROOT / "services" / "reference" / "sample"
SAMPLE_CSV = SAMPLE_DIR / "chs_drg_sample.csv"

BROKERS = ("kafka-1", "kafka-2", "kafka-3")
WORKERS = ("worker-1", "worker-2")
APIS = ("api-1", "api-2")
DRGWATCH_SERVICES = ("init", *WORKERS, *APIS, "intake")
EXPECTED_SERVICES = {
    *BROKERS,
    "postgres",
    *DRGWATCH_SERVICES,
    "proxy",
    "prometheus",
    "grafana",
}


# --------------------------------------------------------------------------- helpers


def load_yaml_docs(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    docs = load_yaml_docs(COMPOSE_FILE)
    assert len(docs) == 1, "docker-compose.yml must be a single YAML document"
    assert isinstance(docs[0], dict)
    return docs[0]


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs = compose.get("services")
    assert isinstance(svcs, dict) and svcs, "compose file has no services"
    return svcs


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """The environment of a compose service, in either the mapping or the list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        out: dict[str, str] = {}
        for item in env:
            key, _, value = str(item).partition("=")
            out[key] = value
        return out
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_argv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [str(v) for v in value]


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def k8s_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


def all_deploy_yaml() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"})


@pytest.fixture(scope="module")
def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in k8s_files():
        for doc in load_yaml_docs(path):
            assert isinstance(doc, dict), f"{path.name}: every document must be a mapping"
            doc.setdefault("__file__", path.name)
            docs.append(doc)
    assert docs, "no Kubernetes manifests under deploy/k8s"
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")


def workloads(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    return (d for d in docs if d.get("kind") in WORKLOAD_KINDS)


# ------------------------------------------------------------------------ compose


def test_compose_has_the_expected_services(services: dict[str, dict[str, Any]]) -> None:
    missing = EXPECTED_SERVICES - set(services)
    assert not missing, f"compose is missing services: {sorted(missing)}"


def test_kafka_is_a_three_broker_kraft_cluster(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    node_ids = set()
    named_volumes = set((compose.get("volumes") or {}).keys())
    for name in BROKERS:
        kafka = services[name]
        assert str(kafka.get("image", "")).startswith("apache/kafka:"), kafka.get("image")
        env = env_of(kafka)
        roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
        assert {"broker", "controller"} <= roles, f"{name}: KRaft broker+controller"
        voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "").split(",")
        assert sorted(v.split("@")[1] for v in voters) == [f"{b}:9093" for b in BROKERS], voters
        node_ids.add(env["KAFKA_NODE_ID"])
        assert f"{env['KAFKA_NODE_ID']}@{name}:9093" in voters, f"{name} is not its own voter"
        assert env.get("KAFKA_ADVERTISED_LISTENERS") == f"PLAINTEXT://{name}:9092"
        # an acknowledged write is on two of the three brokers, and Kafka's own topics too
        assert env.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == "3"
        assert env.get("KAFKA_MIN_INSYNC_REPLICAS") == "2"
        assert env.get("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") == "3"
        assert env.get("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR") == "3"
        assert env.get("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR") == "2"
        assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"
        assert env.get("CLUSTER_ID"), "every broker of one cluster shares its id"
        assert not any("zookeeper" in k.lower() for k in env), "no ZooKeeper with KRaft"
        sources = [str(v).split(":", 1)[0] for v in kafka.get("volumes", [])]
        assert any(src in named_volumes for src in sources), f"{name} data needs a volume"
    assert len(node_ids) == 3, "each broker needs its own node id"
    assert len({env_of(services[b])["CLUSTER_ID"] for b in BROKERS}) == 1
    assert len({str(services[b]["volumes"][0]).split(":")[0] for b in BROKERS}) == 3
    assert "zookeeper" not in services


def test_postgres_has_healthcheck_volume_and_required_password(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    pg = services["postgres"]
    assert str(pg.get("image", "")).startswith("postgres:16"), pg.get("image")
    assert "pg_isready" in " ".join(as_argv(pg.get("healthcheck", {}).get("test")))
    env = env_of(pg)
    assert env.get("POSTGRES_PASSWORD", "").startswith("${POSTGRES_PASSWORD:?"), (
        "the postgres password must come from the environment and be required"
    )
    named_volumes = set((compose.get("volumes") or {}).keys())
    sources = [str(v).split(":", 1)[0] for v in pg.get("volumes", [])]
    assert any(src in named_volumes for src in sources), "postgres data needs a named volume"


@pytest.mark.parametrize("name", DRGWATCH_SERVICES)
def test_drgwatch_service_environment(services: dict[str, dict[str, Any]], name: str) -> None:
    env = env_of(services[name])
    assert env.get("DRGWATCH_MODE") == "production"

    db_url = env.get("DRGWATCH_DATABASE_URL", "")
    assert db_url.startswith("postgresql+asyncpg://"), db_url
    assert "${POSTGRES_PASSWORD:?" in db_url, "the DB password must come from the environment"
    host = urlsplit(re.sub(r"\$\{[^}]*\}", "x", db_url)).hostname
    assert host in services, f"database host {host!r} is not a compose service"

    bootstrap = env.get("DRGWATCH_KAFKA_BOOTSTRAP", "")
    assert bootstrap, "DRGWATCH_KAFKA_BOOTSTRAP missing"
    for hostport in bootstrap.split(","):
        assert hostport.split(":")[0] in services, f"{hostport} is not a compose service"
    assert bootstrap == ",".join(f"{broker}:9092" for broker in BROKERS)

    assert int(env.get("DRGWATCH_TOPIC_PARTITIONS", "0")) == 12
    assert env.get("DRGWATCH_TOPIC_REPLICATION") == "3"
    assert env.get("DRGWATCH_TOPIC_MIN_INSYNC_REPLICAS") == "2"
    assert env.get("DRGWATCH_API_KEYS", "").startswith("${DRGWATCH_API_KEYS:?"), (
        "API keys must be required from the environment, never written in the file"
    )


@pytest.mark.parametrize("name", DRGWATCH_SERVICES)
def test_drgwatch_services_build_from_the_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name].get("build")
    assert isinstance(build, dict), f"{name}: build must name context and dockerfile"
    assert build.get("context") == "."
    dockerfile = build.get("dockerfile")
    assert dockerfile == "deploy/docker/Dockerfile"
    assert (ROOT / build["context"] / dockerfile).is_file(), f"{dockerfile} does not exist"


def test_drgwatch_service_commands(services: dict[str, dict[str, Any]]) -> None:
    init_cmd = " ".join(
        as_argv(services["init"].get("entrypoint")) + as_argv(services["init"].get("command"))
    )
    # the schema is upgraded before anything starts on it (production refuses a database
    # behind its code), then the topics are made
    assert "drgwatch db upgrade" in init_cmd and "drgwatch topics ensure" in init_cmd, init_cmd
    assert init_cmd.index("db upgrade") < init_cmd.index("topics ensure")
    for worker in WORKERS:
        assert as_argv(services[worker].get("command"))[:1] == ["worker"]
        assert env_of(services[worker]).get("DRGWATCH_WEB_ENABLED") == "true"  # /metrics
    assert as_argv(services["intake"].get("command"))[:1] == ["intake"]
    for api in APIS:
        api_cmd = as_argv(services[api].get("command"))
        assert api_cmd[:1] == ["api"]
        assert "--port" in api_cmd and api_cmd[api_cmd.index("--port") + 1] == "8000"
        assert "--host" in api_cmd and api_cmd[api_cmd.index("--host") + 1] == "0.0.0.0"


def published_ports(service: dict[str, Any]) -> list[tuple[str, str]]:
    published = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published.append((str(port.get("published")), str(port.get("target"))))
        else:
            parts = str(port).split(":")
            published.append((parts[-2] if len(parts) > 1 else parts[-1], parts[-1]))
    return published


def test_the_proxy_is_the_one_entry_point_to_the_apis(services: dict[str, dict[str, Any]]) -> None:
    proxy = services["proxy"]
    assert str(proxy.get("image", "")).startswith("haproxy:"), proxy.get("image")
    assert ("8000", "8000") in published_ports(proxy)
    mounts = [str(v) for v in proxy.get("volumes", [])]
    (config_mount,) = [m for m in mounts if m.split(":")[0].endswith("haproxy.cfg")]
    source, target = config_mount.split(":")[:2]
    assert (ROOT / source).resolve() == (DEPLOY / "haproxy" / "haproxy.cfg").resolve()
    assert target == "/usr/local/etc/haproxy/haproxy.cfg"
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text(encoding="utf-8")
    servers = re.findall(r"^\s*server\s+\S+\s+(\S+):(\d+)", config, re.MULTILINE)
    assert sorted(host for host, _ in servers) == sorted(APIS), servers
    assert {port for _, port in servers} == {"8000"}
    assert re.search(r"^\s*bind\s+:8000\s*$", config, re.MULTILINE)
    # only APIs that are ready get requests, and clients' addresses reach them
    assert "uri /readyz" in config and "expect status 200" in config
    assert "option forwardfor" in config
    for api in APIS:
        assert not published_ports(services[api]), f"{api} is reached through the proxy only"
        assert env_of(services[api]).get("FORWARDED_ALLOW_IPS") == "*"
        test = " ".join(as_argv(services[api].get("healthcheck", {}).get("test")))
        assert "localhost:8000/readyz" in test, test


def test_depends_on_conditions_are_consistent(services: dict[str, dict[str, Any]]) -> None:
    allowed = {"service_started", "service_healthy", "service_completed_successfully"}
    seen_conditions = set()
    for name, svc in services.items():
        for dep, condition in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            assert dep != name
            assert condition in allowed, f"{name}->{dep}: bad condition {condition!r}"
            seen_conditions.add(condition)
            if condition == "service_healthy":
                assert services[dep].get("healthcheck"), (
                    f"{name} waits for {dep} health, which has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert str(services[dep].get("restart", "no")) == "no", f"{dep} is one-shot"
    for name in (*WORKERS, *APIS, "intake"):
        deps = depends_on(services[name])
        assert deps.get("init") == "service_completed_successfully", name
    init_deps = depends_on(services["init"])
    assert init_deps.get("postgres") == "service_healthy"
    for broker in BROKERS:
        assert init_deps.get(broker) == "service_healthy", broker
    assert {"service_healthy", "service_completed_successfully"} <= seen_conditions


def test_no_cycles_in_depends_on(services: dict[str, dict[str, Any]]) -> None:
    graph = {name: set(depends_on(svc)) for name, svc in services.items()}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        assert node not in visiting, f"depends_on cycle through {node}"
        if node in done:
            return
        visiting.add(node)
        for nxt in graph.get(node, ()):
            visit(nxt)
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node)


def test_dockerfile() -> None:
    text = (ROOT / "deploy" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    assert lines[0].split()[:2] == ["FROM", "python:3.11-slim"], lines[0]
    assert re.search(r"pip install --no-cache-dir -c requirements\.lock \.", text)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users, "the image must switch to a non-root user"
    assert users[-1].split(":")[0] not in {"root", "0"}, "the final user must not be root"
    entry = [ln for ln in lines if ln.startswith("ENTRYPOINT")]
    assert entry and entry[-1] == 'ENTRYPOINT ["drgwatch"]', entry


# --------------------------------------------------------------------- prometheus


def test_every_yaml_under_deploy_parses() -> None:
    files = all_deploy_yaml()
    assert files, "no YAML under deploy/"
    for path in files:
        assert load_yaml_docs(path), f"{path} has no YAML documents"


def test_prometheus_scrapes_compose_services(services: dict[str, dict[str, Any]]) -> None:
    prom = services["prometheus"]
    assert str(prom.get("image", "")).startswith("prom/prometheus")
    mounts = [str(v) for v in prom.get("volumes", [])]
    config_mount = [m for m in mounts if m.split(":")[0].endswith("prometheus.yml")]
    assert config_mount, "prometheus must mount deploy/prometheus/prometheus.yml"
    source = config_mount[0].split(":")[0]
    assert (ROOT / source).resolve() == (DEPLOY / "prometheus" / "prometheus.yml").resolve()

    (config,) = load_yaml_docs(DEPLOY / "prometheus" / "prometheus.yml")
    targets: set[str] = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
    assert targets, "no scrape targets"
    for target in targets:
        host = target.split(":")[0]
        assert host in services, f"scrape target {target} is not a compose service"
    wanted = {*(f"{api}:8000" for api in APIS), *(f"{w}:6066" for w in WORKERS), "intake:9464"}
    assert wanted <= targets, targets


# ----------------------------------------------------------------------------- k8s

API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "Ingress": "networking.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}


def test_k8s_docs_have_identity_and_valid_api_versions(k8s_docs: list[dict[str, Any]]) -> None:
    seen: set[tuple[str, str, str]] = set()
    for doc in k8s_docs:
        where = doc["__file__"]
        kind = doc.get("kind")
        assert kind in API_VERSIONS, f"{where}: unexpected kind {kind!r}"
        assert doc.get("apiVersion") == API_VERSIONS[kind], (
            f"{where}: {kind} apiVersion {doc.get('apiVersion')}"
        )
        name = (doc.get("metadata") or {}).get("name")
        assert isinstance(name, str) and name, f"{where}: {kind} without metadata.name"
        key = (kind, (doc.get("metadata") or {}).get("namespace", ""), name)
        assert key not in seen, f"duplicate {key}"
        seen.add(key)


def test_k8s_required_kinds_present(k8s_docs: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in k8s_docs}
    for kind in (
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ):
        assert kind in kinds, f"no {kind} in deploy/k8s"
    assert kinds & {"Deployment", "StatefulSet"}


def test_k8s_workers_have_a_disruption_budget(k8s_docs: list[dict[str, Any]]) -> None:
    """Voluntary disruptions take one worker at a time, and the budget selects the workers."""
    (worker,) = by_kind(k8s_docs, "StatefulSet")
    budgets = by_kind(k8s_docs, "PodDisruptionBudget")
    selecting = [
        b
        for b in budgets
        if b["spec"]["selector"]["matchLabels"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(selecting) == 1, "no PodDisruptionBudget selects the worker pods"
    assert selecting[0]["apiVersion"] == "policy/v1"
    assert selecting[0]["spec"].get("maxUnavailable") == 1


def test_k8s_namespaced_objects_use_the_declared_namespace(k8s_docs: list[dict[str, Any]]) -> None:
    namespaces = {d["metadata"]["name"] for d in by_kind(k8s_docs, "Namespace")}
    assert namespaces
    for doc in k8s_docs:
        if doc["kind"] == "Namespace":
            continue
        ns = doc["metadata"].get("namespace")
        assert ns in namespaces, f"{doc['__file__']}: {doc['kind']} namespace {ns!r}"


def _api_deployment(k8s_docs: list[dict[str, Any]]) -> dict[str, Any]:
    for doc in by_kind(k8s_docs, "Deployment"):
        for c in pod_spec(doc)["containers"]:
            if "api" in as_argv(c.get("args")) + as_argv(c.get("command")):
                return doc
    raise AssertionError("no Deployment runs `drgwatch api`")


def _worker_workload(k8s_docs: list[dict[str, Any]]) -> dict[str, Any]:
    for doc in workloads(k8s_docs):
        for c in pod_spec(doc)["containers"]:
            if "worker" in as_argv(c.get("args")) + as_argv(c.get("command")):
                return doc
    raise AssertionError("no workload runs `drgwatch worker`")


def test_k8s_deployments_have_probes(k8s_docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(k8s_docs, "Deployment") + by_kind(k8s_docs, "StatefulSet")
    assert deployments
    for doc in deployments:
        for c in pod_spec(doc)["containers"]:
            assert c.get("readinessProbe"), (
                f"{doc['metadata']['name']}/{c['name']}: no readinessProbe"
            )
            assert c.get("livenessProbe"), (
                f"{doc['metadata']['name']}/{c['name']}: no livenessProbe"
            )
    for doc in by_kind(k8s_docs, "Deployment"):
        for c in pod_spec(doc)["containers"]:
            http = c["readinessProbe"].get("httpGet")
            if http is not None:
                assert http.get("path") == "/readyz", f"{doc['metadata']['name']}: readiness {http}"


def test_k8s_api_deployment(k8s_docs: list[dict[str, Any]]) -> None:
    api = _api_deployment(k8s_docs)
    assert api["spec"]["replicas"] == 2
    (container,) = pod_spec(api)["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert 8000 in ports.values()
    for probe in ("readinessProbe", "livenessProbe"):
        port = container[probe]["httpGet"]["port"]
        assert port == 8000 or ports.get(port) == 8000, f"{probe} port {port!r}"
    args = as_argv(container.get("args"))
    assert args[args.index("--port") + 1] == "8000"
    res = container.get("resources") or {}
    assert res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
    assert res.get("limits", {}).get("memory")


def test_k8s_worker_replicas_fit_partitions(k8s_docs: list[dict[str, Any]]) -> None:
    worker = _worker_workload(k8s_docs)
    assert worker["kind"] in {"Deployment", "StatefulSet"}
    replicas = worker["spec"]["replicas"]
    assert replicas == 3
    config = {}
    for cm in by_kind(k8s_docs, "ConfigMap"):
        config.update(cm.get("data") or {})
    partitions = int(config["DRGWATCH_TOPIC_PARTITIONS"])
    assert partitions >= replicas, "workers beyond the partition count would sit idle"
    assert int(config.get("DRGWATCH_TOPIC_REPLICATION", "3")) >= 3
    if worker["kind"] == "StatefulSet":
        services = {s["metadata"]["name"] for s in by_kind(k8s_docs, "Service")}
        assert worker["spec"]["serviceName"] in services


def test_k8s_containers_run_drgwatch(k8s_docs: list[dict[str, Any]]) -> None:
    found = 0
    for doc in workloads(k8s_docs):
        for c in pod_spec(doc)["containers"]:
            found += 1
            name = f"{doc['metadata']['name']}/{c['name']}"
            assert "drgwatch" in c["image"], f"{name}: image {c['image']}"
            argv = as_argv(c.get("command")) + as_argv(c.get("args"))
            assert argv, f"{name}: no command"
            if argv[0] == "drgwatch":
                continue
            # a shell wrapper must still run drgwatch
            assert argv[0] in {"/bin/sh", "sh"} and "drgwatch" in " ".join(argv), f"{name}: {argv}"
    assert found >= 2


def test_k8s_workloads_get_database_and_kafka_settings(k8s_docs: list[dict[str, Any]]) -> None:
    configmaps = {d["metadata"]["name"]: d for d in by_kind(k8s_docs, "ConfigMap")}
    secrets = {d["metadata"]["name"]: d for d in by_kind(k8s_docs, "Secret")}
    for doc in workloads(k8s_docs):
        for c in pod_spec(doc)["containers"]:
            keys: dict[str, str] = {}
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    ref = src["configMapRef"]["name"]
                    assert ref in configmaps, f"unknown ConfigMap {ref}"
                    keys.update(configmaps[ref].get("data") or {})
                if "secretRef" in src:
                    ref = src["secretRef"]["name"]
                    assert ref in secrets, f"unknown Secret {ref}"
                    keys.update(secrets[ref].get("stringData") or {})
                    keys.update(secrets[ref].get("data") or {})
            for env in c.get("env", []):
                keys[env["name"]] = str(env.get("value", ""))
            name = f"{doc['metadata']['name']}/{c['name']}"
            for required in (
                "DRGWATCH_DATABASE_URL",
                "DRGWATCH_KAFKA_BOOTSTRAP",
                "DRGWATCH_API_KEYS",
            ):
                assert required in keys, f"{name}: {required} not provided"
            assert keys.get("DRGWATCH_MODE") == "production", name


def test_k8s_init_job_upgrades_the_schema_before_making_topics(
    k8s_docs: list[dict[str, Any]],
) -> None:
    (job,) = by_kind(k8s_docs, "Job")
    (container,) = pod_spec(job)["containers"]
    script = " ".join(as_argv(container.get("command")) + as_argv(container.get("args")))
    assert "drgwatch db upgrade" in script and "drgwatch topics ensure" in script, script
    assert script.index("db upgrade") < script.index("topics ensure")
    assert "&&" in script, "topics must not be made when the upgrade failed"
    assert "db init" not in script
    keys = {
        src.get("configMapRef", src.get("secretRef", {})).get("name")
        for src in container["envFrom"]
    }
    assert {"drgwatch-config", "drgwatch-secrets"} <= keys  # the production database


def test_deploy_readme_says_how_to_upgrade() -> None:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needed in ("drgwatch db upgrade", "drgwatch db current", "drgwatch db downgrade"):
        assert needed in text, needed
    assert "refuse" in text  # what api and worker do on a database behind their code


def test_k8s_selectors_and_references(k8s_docs: list[dict[str, Any]]) -> None:
    pod_labels = []
    for doc in by_kind(k8s_docs, "Deployment") + by_kind(k8s_docs, "StatefulSet"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), f"{doc['metadata']['name']}: selector mismatch"
        pod_labels.append(labels)
    for svc in by_kind(k8s_docs, "Service"):
        sel = svc["spec"]["selector"]
        assert any(sel.items() <= labels.items() for labels in pod_labels), (
            f"Service {svc['metadata']['name']} selects no pods"
        )
    deployments = {d["metadata"]["name"] for d in by_kind(k8s_docs, "Deployment")}
    for hpa in by_kind(k8s_docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in deployments
        assert ref["apiVersion"] == "apps/v1"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


PLACEHOLDER = re.compile(r"REPLACE_ME|CHANGE_ME|<[^<>]+>")


def test_k8s_secrets_hold_only_placeholders(k8s_docs: list[dict[str, Any]]) -> None:
    secrets = by_kind(k8s_docs, "Secret")
    assert secrets
    for secret in secrets:
        values = dict(secret.get("stringData") or {})
        for key, encoded in (secret.get("data") or {}).items():
            values[key] = base64.b64decode(encoded).decode("utf-8")
        assert values, f"Secret {secret['metadata']['name']} is empty"
        for key, value in values.items():
            assert PLACEHOLDER.search(str(value)), (
                f"Secret {secret['metadata']['name']}.{key} holds a value that is not "
                "an obvious placeholder"
            )
            # a password inside a URL must be a placeholder too
            parts = urlsplit(str(value))
            if parts.scheme and parts.password is not None:
                assert PLACEHOLDER.search(parts.password), f"{key}: real-looking password"


# --------------------------------------------------------------- sample catalogue

CODE = re.compile(r"^[A-Z][A-Z][0-9][1359]$")


@pytest.fixture(scope="module")
def catalogue_rows() -> list[dict[str, str]]:
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == [
            "drg_code",
            "name",
            "weight",
            "avg_los_days",
            "standard_cost",
            "name_en",
            "mean_cost",
        ]
        return list(reader)


def test_sample_catalogue_rows(catalogue_rows: list[dict[str, str]]) -> None:
    assert 300 <= len(catalogue_rows) <= 450
    codes = [r["drg_code"] for r in catalogue_rows]
    assert len(codes) == len(set(codes)), "duplicate DRG codes"
    for row in catalogue_rows:
        code = row["drg_code"]
        assert CODE.match(code), code
        # named in Chinese, as a medical insurance bureau's catalogue is, with the English
        assert any("\u4e00" <= ch <= "\u9fff" for ch in row["name"]), code
        assert row["name_en"].strip() and row["name_en"].isascii(), code
        weight = Decimal(row["weight"])
        assert weight.as_tuple().exponent == -4, f"{code}: weight needs 4 decimal places"
        assert Decimal("0.2") <= weight <= Decimal("30"), f"{code}: weight {weight}"
        los = Decimal(row["avg_los_days"])
        assert los.as_tuple().exponent == -1, f"{code}: avg_los_days needs 1 decimal place"
        assert Decimal("1") <= los <= Decimal("40"), f"{code}: avg_los_days {los}"
        if row["standard_cost"]:
            cost = Decimal(row["standard_cost"])
            assert cost > 0 and cost.as_tuple().exponent == -2, f"{code}: {cost}"
        # the region's mean cost per case: above the employee standard (the base rate is
        # set below the region's mean), in cents
        mean = Decimal(row["mean_cost"])
        standard = Decimal(row["standard_cost"] or weight * Decimal("12252.70"))
        assert mean.as_tuple().exponent == -2 and standard < mean < 2 * standard, code
    assert "FM15" in codes


def test_sample_catalogue_shape(catalogue_rows: list[dict[str, str]]) -> None:
    overrides = [r for r in catalogue_rows if r["standard_cost"]]
    assert 1 <= len(overrides) <= 10, "explicit standards should be the exception"
    by_code = {r["drg_code"]: r for r in catalogue_rows}
    # severity 1 > 3 > 5 within an ADRG
    for code, row in by_code.items():
        adrg = code[:3]
        for better, worse in (("3", "1"), ("5", "3"), ("5", "1")):
            if code[3] == better and adrg + worse in by_code:
                assert Decimal(by_code[adrg + worse]["weight"]) > Decimal(row["weight"]), adrg
    mdcs = {c[0] for c in by_code}
    assert len(mdcs) >= 20, f"sample covers too few MDCs: {sorted(mdcs)}"
    for adrg in ("GB1", "ES3", "IC2", "RE1", "OB1", "FM1"):
        assert any(c.startswith(adrg) for c in by_code), adrg
    weights = [Decimal(r["weight"]) for r in catalogue_rows]
    typical = sum(1 for w in weights if Decimal("0.4") <= w <= Decimal("3"))
    assert typical >= 0.6 * len(weights), "most weights should lie between 0.4 and 3"
    assert max(weights) >= Decimal("15"), "transplant/ECMO groups should be heavy"


def test_sample_catalogue_file_is_plain_utf8_without_comments() -> None:
    raw = SAMPLE_CSV.read_bytes()
    text = raw.decode("utf-8")
    assert not text.startswith("\ufeff"), "no BOM"
    assert not any(line.startswith("#") for line in text.splitlines())


def test_sample_readme_says_sample() -> None:
    text = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    assert "SAMPLE" in text
    assert "not for payment" in text.lower() or "not official" in text.lower()
    assert "12252.70" in text and "9649.24" in text
    assert "2026-01-01" in text


# ------------------------------------------------------------------------- grafana

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "drgwatch.json"


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    assert str(grafana.get("image", "")).startswith("grafana/grafana:"), grafana.get("image")
    assert ("3000", "3000") in published_ports(grafana)
    env = env_of(grafana)
    assert env.get("GF_SECURITY_ADMIN_PASSWORD", "").startswith("${GRAFANA_ADMIN_PASSWORD:?")
    mounts = dict(str(v).split(":")[:2] for v in grafana.get("volumes", []))
    assert mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_dir = mounts.get("./deploy/grafana/dashboards")
    assert dashboards_dir, "the dashboards directory must be mounted"

    (sources,) = load_yaml_docs(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (prometheus,) = sources["datasources"]
    assert prometheus["type"] == "prometheus"
    url = urlsplit(prometheus["url"])
    assert url.hostname in services and url.port == 9090, prometheus["url"]

    (providers,) = load_yaml_docs(GRAFANA / "provisioning" / "dashboards" / "drgwatch.yml")
    (provider,) = providers["providers"]
    assert provider["options"]["path"] == dashboards_dir

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == prometheus["uid"], panel["title"]


def test_dashboard_panels_query_drgwatch_and_do_not_overlap() -> None:
    # that every name queried is exported is checked against a scrape of the running
    # services, in tests/deploy/test_monitoring.py
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used |= set(re.findall(r"\bdrgwatch_[a-z0-9_]+", target["expr"]))
    # the ingest, HTTP and intake figures at least
    assert {
        "drgwatch_events_ingested_total",
        "drgwatch_http_request_seconds_bucket",
        "drgwatch_intake_records_total",
    } <= used
    # panels do not overlap
    cells = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panel {panel['title']!r} overlaps another"
                cells.add((x, y))


def test_k8s_grace_periods_outlast_the_shutdown_bound(k8s_docs: list[dict[str, Any]]) -> None:
    """Each long-running pod gets more than DRGWATCH_SHUTDOWN_SECONDS to stop, so that it
    finishes what it has in hand before Kubernetes' SIGKILL; a little more, not minutes."""
    config = next(
        d for d in by_kind(k8s_docs, "ConfigMap") if d["metadata"]["name"] == "drgwatch-config"
    )
    bound = float(config["data"]["DRGWATCH_SHUTDOWN_SECONDS"])
    checked = []
    for doc in workloads(k8s_docs):
        if doc["kind"] in ("Deployment", "StatefulSet"):
            grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
            assert bound < grace <= bound + 30, f"{doc['__file__']}: grace {grace}, bound {bound}"
            checked.append(doc["metadata"]["name"])
    assert len(checked) >= 3, checked


def test_compose_grace_periods_outlast_the_shutdown_bound(
    services: dict[str, dict[str, Any]],
) -> None:
    """Docker's default 10 s before SIGKILL is below the bound: each drgwatch service
    that runs for good sets a longer one."""
    for name in ("worker-1", "worker-2", "api-1", "api-2", "intake"):
        service = services[name]
        bound = float(env_of(service)["DRGWATCH_SHUTDOWN_SECONDS"])
        grace = service.get("stop_grace_period", "10s")
        assert grace.endswith("s"), grace
        assert bound < float(grace[:-1]) <= bound + 30, f"{name}: {grace}, bound {bound}"
