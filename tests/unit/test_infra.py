"""infra/ configs: they parse, carry what their tools need, agree with pyproject.toml, constraints.txt
and params.yaml, and hold no credentials. Nothing is applied (no Docker or Kubernetes here)."""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
TEXT_SUFFIXES = {".yaml", ".yml", ".ini", ".py", ".md", ".sh", ".example", ".dockerignore", ""}


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {k.lower(): v for k, _, v in (ln.partition("==") for ln in lines if "==" in ln)}


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def load(rel: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((INFRA / rel).read_text()) if d is not None]


def one(rel: str, kind: str) -> dict[str, Any]:
    docs = [d for d in load(rel) if d.get("kind") == kind]
    assert len(docs) == 1, f"{rel}: expected one {kind}, found {len(docs)}"
    return docs[0]


def search_params() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text())["search"]


def infra_files() -> list[Path]:
    return sorted(p for p in INFRA.rglob("*") if p.is_file() and (p.suffix in TEXT_SUFFIXES
                                                                   or p.name.startswith("Dockerfile")))


def scale_out_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Scale out\n(.*?)(?=^## )", text, re.DOTALL | re.MULTILINE)
    assert match, "README.md has no '## Scale out' section followed by another section"
    return match.group(1)


def containers(pod_template: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_template["spec"]["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted([*INFRA.glob("kuberay/*.yaml"), *INFRA.glob("mlflow/k8s/*.yaml")]):
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return out


# ---------- every file parses ----------

@pytest.mark.parametrize("path", sorted(INFRA.rglob("*.yaml")), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_yaml_file_parses_to_mappings(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


def test_every_k8s_document_has_api_version_kind_and_name() -> None:
    docs = k8s_docs()
    assert len(docs) >= 10
    for name, doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys(), name
        assert doc["metadata"].get("name"), f"{name}: {doc['kind']} without metadata.name"


# ---------- ray up ----------

def test_cluster_yaml_validates_against_the_installed_ray_schema() -> None:
    # The schema `ray up` validates against, from the pinned ray (located without importing ray: fast).
    ray_dir = Path(importlib.util.find_spec("ray").origin).parent
    schema = json.loads((ray_dir / "autoscaler" / "ray-schema.json").read_text())
    config = load("ray/cluster.yaml")[0]
    jsonschema.validate(config, schema)
    for key in ("cluster_name", "max_workers", "available_node_types", "head_node_type"):
        assert key in config, key
    assert config["head_node_type"] in config["available_node_types"]
    assert config["provider"]["type"] in {"aws", "gcp"}


def test_cluster_yaml_gpu_group_autoscales_from_zero() -> None:
    config = load("ray/cluster.yaml")[0]
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    gpu = [t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) >= 1]
    assert len(gpu) == 1
    assert gpu[0]["min_workers"] == 0 and 1 <= gpu[0]["max_workers"] <= config["max_workers"]
    assert "--gpus all" in gpu[0]["docker"]["worker_run_options"]


def test_cluster_yaml_placeholders_are_marked() -> None:
    config = load("ray/cluster.yaml")[0]
    assert "CHANGE_ME" in config["provider"]["region"]
    for node in config["available_node_types"].values():
        assert all("CHANGE_ME" in s for s in node["node_config"]["SubnetIds"])
        assert "CHANGE_ME" in node["node_config"]["ImageId"]


def test_cluster_yaml_start_commands_turn_token_auth_on_from_the_secret_file() -> None:
    config = load("ray/cluster.yaml")[0]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = next(c for c in config[key] if "ray start" in c)
        assert "RAY_AUTH_MODE=token" in start, key
        assert re.search(r'RAY_AUTH_TOKEN="\$\{RAY_AUTH_TOKEN:\?', start), f"{key}: token must come from env"
        assert ". ~/.medtune-secrets/env" in start, key
    assert "--head" in " ".join(config["head_start_ray_commands"])
    mounts = config["file_mounts"]
    assert mounts.get("~/medtune") == ".", "the repo working dir is synced to every node"
    assert mounts.get("~/.medtune-secrets", "").startswith("~/"), "secrets come from outside the repo"


def test_cluster_yaml_puts_ray_results_on_shared_storage() -> None:
    # Ray Tune needs storage every node sees for checkpoints written on worker nodes.
    config = load("ray/cluster.yaml")[0]
    assert any("ray_results" in c and "/mnt/medtune" in c for c in config["setup_commands"])
    assert "--volume /mnt/medtune:/mnt/medtune" in config["docker"]["run_options"]


# ---------- KubeRay ----------

def test_raycluster_has_head_and_autoscaling_gpu_group_at_the_pinned_ray_version() -> None:
    cluster = one("kuberay/raycluster.yaml", "RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    assert cluster["spec"]["rayVersion"] == pins()["ray"]
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = cluster["spec"]["workerGroupSpecs"]
    assert groups, "no worker group"
    for group in groups:
        limits = containers(group["template"])[0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1, group["groupName"]
        assert group["minReplicas"] == 0 and group["maxReplicas"] >= 1


def test_every_ray_container_gets_the_token_from_a_secret() -> None:
    cluster = one("kuberay/raycluster.yaml", "RayCluster")
    job = one("kuberay/rayjob-tune.yaml", "RayJob")
    templates = [cluster["spec"]["headGroupSpec"]["template"],
                 *(g["template"] for g in cluster["spec"]["workerGroupSpecs"]),
                 job["spec"]["submitterPodTemplate"]]
    for template in templates:
        for container in containers(template):
            env = env_of(container)
            assert env["RAY_AUTH_MODE"]["value"] == "token", container["name"]
            ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "medtune-ray-auth", "key": "auth_token"}, container["name"]


def test_rayjob_runs_the_tune_stage_on_the_cluster_with_in_cluster_mlflow() -> None:
    job = one("kuberay/rayjob-tune.yaml", "RayJob")
    cluster = one("kuberay/raycluster.yaml", "RayCluster")
    assert job["apiVersion"] == "ray.io/v1"
    assert re.search(r"(^|[ ;&'])medtune tune($|[ ;&'])", job["spec"]["entrypoint"])
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    service = one("mlflow/k8s/mlflow.yaml", "Service")
    url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    assert runtime_env["env_vars"]["MLFLOW_TRACKING_URI"] == url
    head = containers(cluster["spec"]["headGroupSpec"]["template"])[0]
    head_env = env_of(head)
    assert head_env["MLFLOW_TRACKING_URI"]["value"] == url
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert "secretKeyRef" in head_env[name]["valueFrom"], name


def test_ray_nodes_share_the_workspace_volume() -> None:
    cluster = one("kuberay/raycluster.yaml", "RayCluster")
    pvc = one("kuberay/workspace-pvc.yaml", "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for template in [cluster["spec"]["headGroupSpec"]["template"],
                     *(g["template"] for g in cluster["spec"]["workerGroupSpecs"])]:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                  for v in template["spec"]["volumes"] if "persistentVolumeClaim" in v}
        mounts = {m["name"]: m["mountPath"] for m in containers(template)[0]["volumeMounts"]}
        assert claims == {"workspace": pvc["metadata"]["name"]} and mounts["workspace"] == "/workspace"
        assert containers(template)[0]["workingDir"].startswith("/workspace/")


# ---------- resources per trial vs params.yaml ----------

def gpu_workers() -> list[tuple[str, float, float]]:
    """(where, cpus, gpus) of every GPU worker type in cluster.yaml and the RayCluster."""
    config = load("ray/cluster.yaml")[0]
    out = [(f"cluster.yaml:{n}", float(t["resources"]["CPU"]), float(t["resources"]["GPU"]))
           for n, t in config["available_node_types"].items() if t["resources"].get("GPU", 0) > 0]
    for group in one("kuberay/raycluster.yaml", "RayCluster")["spec"]["workerGroupSpecs"]:
        limits = containers(group["template"])[0]["resources"]["limits"]
        where = f"raycluster:{group['groupName']}"
        out.append((where, float(limits["cpu"]), float(limits["nvidia.com/gpu"])))
    return out


def sizing() -> dict[str, float]:
    note = one("kuberay/raycluster.yaml", "RayCluster")["metadata"]["annotations"]["medtune.io/search-sizing"]
    return {k: float(v) for k, v in (item.split("=") for item in note.split())}


def check_fits(cpus_per_trial: float, gpus_per_trial: float) -> list[str]:
    problems = []
    for where, cpus, gpus in gpu_workers():
        if cpus < cpus_per_trial:
            problems.append(f"{where}: {cpus} CPUs < cpus_per_trial {cpus_per_trial}")
        if gpus_per_trial > 0:
            slots = gpus / gpus_per_trial
            if slots < 1 or abs(slots - round(slots)) > 1e-9:
                problems.append(f"{where}: {gpus} GPUs / gpus_per_trial {gpus_per_trial} "
                                "is not a whole number >= 1")
            elif round(slots) * cpus_per_trial > cpus:
                problems.append(f"{where}: {round(slots)} trials x {cpus_per_trial} CPUs > {cpus} CPUs")
    return problems


def test_gpu_workers_fit_the_trials_of_params_yaml() -> None:
    search = search_params()
    assert check_fits(float(search["cpus_per_trial"]), float(search["gpus_per_trial"])) == []


def test_gpu_workers_fit_the_documented_cluster_sizing() -> None:
    size = sizing()
    assert size["gpus_per_trial"] > 0
    assert check_fits(size["cpus_per_trial"], size["gpus_per_trial"]) == []
    group = one("kuberay/raycluster.yaml", "RayCluster")["spec"]["workerGroupSpecs"][0]
    gpus = float(containers(group["template"])[0]["resources"]["limits"]["nvidia.com/gpu"])
    assert size["max_concurrent_trials"] == group["maxReplicas"] * gpus / size["gpus_per_trial"]
    section = scale_out_section()
    for key in ("cpus_per_trial", "gpus_per_trial", "max_concurrent_trials"):
        assert re.search(rf"search\.{key}={size[key]:g}\b", section), f"README does not set search.{key}"


def test_the_fit_check_catches_a_misfit() -> None:
    assert check_fits(64, 0.0), "more CPUs per trial than a worker has"
    assert check_fits(1, 0.3), "1 GPU / 0.3 is not a whole number of trials"
    assert check_fits(4, 0.25), "4 trials x 4 CPUs exceed the worker"


def test_cluster_yaml_and_kuberay_gpu_workers_are_the_same_size() -> None:
    sizes = {(cpus, gpus) for _, cpus, gpus in gpu_workers()}
    assert len(sizes) == 1, sizes


# ---------- images and versions ----------

def test_project_image_tags_are_the_pyproject_version() -> None:
    version = project()["version"]
    refs = []
    for path in [*infra_files(), ROOT / "README.md"]:
        refs += [(path.name, tag) for tag in re.findall(r"(?<![\w.-])medtune:([\w.-]+)", path.read_text())]
    assert len(refs) >= 6
    bad = [(name, tag) for name, tag in refs if tag not in {version, f"{version}-cpu"}]
    assert bad == [], f"image tags other than medtune:{version}[-cpu]: {bad}"
    images = [c["image"] for _, d in k8s_docs() if d["kind"] in {"RayCluster", "RayJob"}
              for c in _all_containers(d)]
    assert images and all(i.endswith(f"/medtune:{version}") for i in images), images
    assert load("ray/cluster.yaml")[0]["docker"]["image"].endswith(f"/medtune:{version}")


def _all_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    if doc["kind"] == "RayCluster":
        return [*containers(spec["headGroupSpec"]["template"]),
                *(c for g in spec["workerGroupSpecs"] for c in containers(g["template"]))]
    if doc["kind"] == "RayJob":
        return containers(spec["submitterPodTemplate"])
    if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
        return containers(spec["template"])
    return []


def test_mlflow_images_are_the_constraints_version() -> None:
    mlflow = pins()["mlflow"]
    dockerfile = (INFRA / "mlflow" / "Dockerfile").read_text()
    assert re.search(rf"^FROM ghcr\.io/mlflow/mlflow:v{re.escape(mlflow)}$", dockerfile, re.MULTILINE)
    compose = load("mlflow/docker-compose.yaml")[0]
    assert compose["services"]["mlflow"]["image"] == f"medtune-mlflow:{mlflow}"
    deployment = one("mlflow/k8s/mlflow.yaml", "Deployment")
    assert containers(deployment["spec"]["template"])[0]["image"].endswith(f"/medtune-mlflow:{mlflow}")


def test_every_image_is_pinned_to_an_explicit_tag() -> None:
    compose = load("mlflow/docker-compose.yaml")[0]
    images = [s["image"] for s in compose["services"].values()]
    images += [c["image"] for _, d in k8s_docs() for c in _all_containers(d)]
    assert len(images) >= 10
    for image in images:
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest" and re.search(r"\d", tag), f"unpinned image {image}"


def test_python_is_3_11_everywhere() -> None:
    assert project()["requires-python"].startswith(">=3.11,<3.12")
    dockerfile = (INFRA / "docker" / "Dockerfile").read_text()
    assert "python3.11 -m venv" in dockerfile and "python3.11" in dockerfile
    assert re.search(r"BASE=python:3\.11-slim", dockerfile), "documented CPU base"


# ---------- the project Dockerfile ----------

def test_dockerfile_installs_exactly_the_constraints() -> None:
    text = (INFRA / "docker" / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04", base.group(1))
    assert re.search(r"^FROM \$\{BASE\}$", text, re.MULTILINE)
    assert re.search(r"^COPY constraints\.txt pyproject\.toml \./$", text, re.MULTILINE)
    assert re.search(r"^COPY src/ src/$", text, re.MULTILINE)
    assert re.search(r"pip install -c constraints\.txt .*-e \.", text)
    # torch: same version as constraints.txt, the build (CUDA/CPU) from TORCH_INDEX_URL
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cu\d+$", text, re.MULTILINE)
    assert "sed -n 's/^torch==//p' constraints.txt" in text
    assert '--no-deps --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"' in text
    literal = set(re.findall(r"torch==(\d[\w.+]*)", text))
    assert literal <= {pins()["torch"]}, f"torch versions named in the Dockerfile: {literal}"
    every_pip = re.findall(r"pip install [^\n]*", text)
    assert all("-c constraints.txt" in p or "--no-deps" in p for p in every_pip), every_pip


def test_docker_ignore_keeps_data_and_state_out_of_the_context() -> None:
    lines = (INFRA / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", "deny by default"
    assert {"!pyproject.toml", "!constraints.txt", "!src/"} <= set(rules)
    for path in ("data/", ".venv/", "mlruns.db", "ray_results/", ".dvc/config.local", ".medtune/"):
        assert path in rules, path


def test_dvc_s3_is_installed_in_the_image_not_a_project_dependency() -> None:
    assert not any("dvc-s3" in d or "dvc[s3]" in d for d in project()["dependencies"])
    dockerfile = (INFRA / "docker" / "Dockerfile").read_text()
    assert re.search(r'^ARG EXTRA_PIP="dvc-s3==\d+\.\d+\.\d+"$', dockerfile, re.MULTILINE)


# ---------- MLflow: compose ----------

def test_compose_services_have_healthchecks_and_ordered_start() -> None:
    services = load("mlflow/docker-compose.yaml")[0]["services"]
    for name in ("mlflow", "postgres", "minio"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/health" in " ".join(services["mlflow"]["healthcheck"]["test"])
    depends = services["mlflow"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["minio-init"]["condition"] == "service_completed_successfully"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"


SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|ROOT_USER")
REQUIRED_VAR = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:\?[^}]+\}$")


def test_compose_refuses_to_start_without_its_secrets() -> None:
    services = load("mlflow/docker-compose.yaml")[0]["services"]
    secret_env = [(svc, k, v) for svc, s in services.items()
                  for k, v in (s.get("environment") or {}).items() if SECRET_NAME.search(k)]
    assert len(secret_env) >= 8
    bad = [(svc, k, v) for svc, k, v in secret_env if not REQUIRED_VAR.match(str(v))]
    assert bad == [], f"secrets must be ${{VAR:?message}}: {bad}"
    mlflow_env = services["mlflow"]["environment"]
    assert mlflow_env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_AUTH_ADMIN_PASSWORD:?")


def test_mlflow_server_runs_basic_auth_with_allowed_hosts() -> None:
    start = (INFRA / "mlflow" / "start_server.py").read_text()
    assert '"--app-name", "basic-auth"' in start
    assert '"--allowed-hosts", env("MLFLOW_ALLOWED_HOSTS")' in start
    assert 'os.environ["MLFLOW_AUTH_CONFIG_PATH"]' in start
    assert "postgresql+psycopg2://" in start and '"--serve-artifacts"' in start
    hosts = load("mlflow/docker-compose.yaml")[0]["services"]["mlflow"]["environment"]["MLFLOW_ALLOWED_HOSTS"]
    k8s_hosts = env_of(containers(one("mlflow/k8s/mlflow.yaml", "Deployment")["spec"]["template"])[0])
    for value in (hosts, k8s_hosts["MLFLOW_ALLOWED_HOSTS"]["value"]):
        assert "*" not in value and "mlflow:5000" in value


def test_basic_auth_ini_denies_by_default_and_has_no_admin_password() -> None:
    import configparser
    parser = configparser.ConfigParser()
    parser.read_string((INFRA / "mlflow" / "basic_auth.ini").read_text())
    section = parser["mlflow"]
    assert section["default_permission"] == "NO_PERMISSIONS"
    assert "admin_password" not in section, "the admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD"
    assert section["database_uri"] == "@AUTH_DATABASE_URI@"


def test_compose_env_template_has_names_but_no_values() -> None:
    lines = [ln for ln in (INFRA / "mlflow" / ".env.example").read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert lines and all(ln.endswith("=") for ln in lines), lines
    assert "mlflow/.env" in (INFRA / ".gitignore").read_text().split()


# ---------- Kubernetes secrets ----------

def test_k8s_secret_templates_hold_no_values() -> None:
    secrets = [(n, d) for n, d in k8s_docs() if d["kind"] == "Secret"]
    assert len(secrets) == 6
    for name, doc in secrets:
        assert "data" not in doc, name
        assert doc["stringData"] and all(v == "" for v in doc["stringData"].values()), name


def test_secret_env_is_referenced_and_every_reference_is_templated() -> None:
    keys = {(d["metadata"]["name"], k)
            for _, d in k8s_docs() if d["kind"] == "Secret" for k in d["stringData"]}
    refs = 0
    for name, doc in k8s_docs():
        for container in _all_containers(doc):
            for var, entry in env_of(container).items():
                if SECRET_NAME.search(var) or var.endswith("_USERNAME") or var == "POSTGRES_USER":
                    assert "value" not in entry, f"{name}: {var} embedded; use secretKeyRef"
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs += 1
                    assert (ref["name"], ref["key"]) in keys, f"{name}: {var} -> {ref} not in a template"
    assert refs >= 15


# ---------- no credentials anywhere ----------

SECRET_KEY_NAME = r"(?:[A-Za-z_][\w-]*?)?(?:password|passwd|secret|secret_key|secret_access_key|auth_token)"
# A value that is not a literal: empty, an env/compose reference, a YAML mapping/anchor/block, or code.
# `<...>` and `...` are the docs' placeholders, `%s` a printf slot.
NOT_LITERAL = r"""(?:["']{2}|["']?\$|["']?<|\.\.\.|%s|[{&*>|(\[]|env\(|os\.|None\b|#|$)"""
LEAKS = {
    "mlflow's old default admin password": re.compile(r"password1234", re.IGNORECASE),
    "MinIO default credentials": re.compile(r"minioadmin", re.IGNORECASE),
    "postgres:postgres login": re.compile(r"postgres:postgres@|//postgres:postgres"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "literal secret value": re.compile(
        rf"(?<![\w${{.])(?i:{SECRET_KEY_NAME})\b[ \t]*[:=][ \t]*(?!{NOT_LITERAL})\S{{3,}}", re.MULTILINE),
    "literal secret in a k8s env entry": re.compile(
        r"name:[ \t]*\w*(?:PASSWORD|SECRET|TOKEN|ACCESS_KEY)\w*[ \t]*,[ \t]*value:[ \t]*(?![\"']?\$)\S"),
    "literal RAY_AUTH_TOKEN": re.compile(
        rf"(?<![\w${{.])RAY_AUTH_TOKEN[ \t]*[:=][ \t]*(?!{NOT_LITERAL})\S{{3,}}", re.MULTILINE),
    "literal secret in kubectl --from-literal": re.compile(
        r"--from-literal=[\w.-]*(?:password|secret|token|key)[\w.-]*=(?![\"']?\$)\S", re.IGNORECASE),
    "credentials inside a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@${}]+:[^\s/@${}]+@"),
}


def find_leaks(text: str) -> list[str]:
    return [f"{what}: {m.group(0)!r}" for what, rx in LEAKS.items() for m in rx.finditer(text)]


@pytest.mark.parametrize("bad", [
    "admin_password = password1234", "MINIO_ROOT_USER: minioadmin", "postgresql://postgres:postgres@db/x",
    "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP", "  password: hunter22", "POSTGRES_PASSWORD=s3cret-value",
    "RAY_AUTH_TOKEN=3f1c2a9b8d7e6f50", "- {name: RAY_AUTH_TOKEN, value: abcdef0123456789}",
    "--from-literal=auth_token=abcdef", "s3://user:pw123@host/bucket",
])
def test_the_leak_scanner_catches(bad: str) -> None:
    assert find_leaks(bad), bad


@pytest.mark.parametrize("good", [
    'POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set it}', 'password: ""', "MLFLOW_AUTH_ADMIN_PASSWORD=",
    '--from-literal=auth_token="$RAY_AUTH_TOKEN"', 'RAY_AUTH_TOKEN="${RAY_AUTH_TOKEN:?x}"',
    "valueFrom: {secretKeyRef: {name: medtune-postgres, key: password}}",
])
def test_the_leak_scanner_passes(good: str) -> None:
    assert find_leaks(good) == [], good


@pytest.mark.parametrize("path", infra_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_no_default_or_literal_credentials_in_infra(path: Path) -> None:
    assert find_leaks(path.read_text()) == []


def test_no_literal_credentials_in_the_scale_out_docs() -> None:
    assert find_leaks(scale_out_section()) == []


# ---------- README "Scale out" ----------

def test_scale_out_readme_has_the_exact_commands() -> None:
    section = scale_out_section()
    for command in (
        "docker build -f infra/docker/Dockerfile -t",
        "docker compose -f infra/mlflow/docker-compose.yaml up -d",
        "ray up -y infra/ray/cluster.yaml",
        "kubectl -n medtune apply -f infra/kuberay/raycluster.yaml",
        "kubectl -n medtune apply -f infra/kuberay/rayjob-tune.yaml",
        "dvc remote add -d storage s3://medtune-dvc",
        "dvc remote modify storage endpointurl http://minio:9000",
        "dvc remote modify --local storage access_key_id",
        "dvc push", "dvc pull",
        "export RAY_ADDRESS=", "export MLFLOW_TRACKING_URI=",
        "export MLFLOW_TRACKING_USERNAME=", "export MLFLOW_TRACKING_PASSWORD=",
        "pip install dvc-s3==",
    ):
        assert command in section, command
    for rel in set(re.findall(r"infra/[\w./-]+\.(?:yaml|md)|infra/docker/Dockerfile", section)):
        assert (ROOT / rel).is_file(), f"README names {rel}, which does not exist"
    pinned = re.search(r"dvc-s3==([\d.]+)", section).group(1)
    assert f'dvc-s3=={pinned}"' in (INFRA / "docker" / "Dockerfile").read_text()
