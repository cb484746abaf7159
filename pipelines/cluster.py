"""What every task needs on a cluster, declared once: its configuration from the
``nba-forecast-settings`` ConfigMap and the Secrets (as environment, through
kfp-kubernetes), CPU/memory requests and limits, a non-root security context, and caching
off (every step reads the live log or registry, or changes them). ``on_gpu_node`` adds the
retrain's GPU node. ``recorded`` wraps a pipeline in an exit handler that records the run.
The local subprocess runner ignores all of it; ``nba-forecast pipeline run --runner
container`` gives each task exactly this environment (a test walks the compiled IR)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kfp import dsl, kubernetes
from kfp.dsl import PipelineTask

SETTINGS_CONFIGMAP = "nba-forecast-settings"
# every key of the settings ConfigMap a task reads (manifests/base/kustomization.yaml)
SETTINGS_KEYS = (
    "NBA_FORECAST_LOG_LEVEL",
    "NBA_FORECAST_REGISTRY_URL",
    "NBA_FORECAST_S3_ENDPOINT_URL",
    "NBA_FORECAST_ENVIRONMENT",
    "NBA_FORECAST_GITOPS_REPO",
    "NBA_FORECAST_GAMES_URI",
)


@dataclass(frozen=True)
class SecretEnv:
    name: str
    keys: dict[str, str]  # secret key -> environment variable
    optional: bool = False


SECRETS = (
    SecretEnv("nba-forecast-database", {"url": "NBA_FORECAST_DATABASE_URL"}),
    SecretEnv(
        "nba-forecast-s3",
        {"access-key-id": "AWS_ACCESS_KEY_ID", "secret-access-key": "AWS_SECRET_ACCESS_KEY"},
    ),
    # the GitOps deploy credentials: a token (https) or an SSH key; a public or file://
    # remote needs neither, so the Secret may be absent
    SecretEnv(
        "nba-forecast-git",
        {
            "token": "NBA_FORECAST_GITOPS_TOKEN",
            "ssh-privatekey": "NBA_FORECAST_GITOPS_SSH_KEY",
            "known_hosts": "NBA_FORECAST_GITOPS_KNOWN_HOSTS",
        },
        optional=True,
    ),
)


@dataclass(frozen=True)
class Size:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


SIZES = {
    "small": Size("250m", "1", "512Mi", "2Gi"),  # log queries, alias moves, git commits
    "medium": Size("1", "2", "2Gi", "6Gi"),  # loads the games and models, scores seasons
    "gpu": Size("2", "4", "8Gi", "16Gi"),  # the retrain; plus one GPU (on_gpu_node)
}
RUN_AS_USER = 10001  # the images' user (images/Dockerfile)

GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
RETRAIN_TIMEOUT_S = 2 * 3600
RETRAIN_RETRIES = 2


def in_cluster(task: PipelineTask, size: str = "small") -> PipelineTask:
    """The task with its configuration, resources, security context and caching off."""
    chosen = SIZES[size]
    task.set_cpu_request(chosen.cpu_request).set_cpu_limit(chosen.cpu_limit)
    task.set_memory_request(chosen.memory_request).set_memory_limit(chosen.memory_limit)
    kubernetes.use_config_map_as_env(
        task,
        config_map_name=SETTINGS_CONFIGMAP,
        config_map_key_to_env={key: key for key in SETTINGS_KEYS},
    )
    for secret in SECRETS:
        kubernetes.use_secret_as_env(
            task,
            secret_name=secret.name,
            secret_key_to_env=dict(secret.keys),
            optional=secret.optional,
        )
    kubernetes.set_security_context(task, run_as_user=RUN_AS_USER, run_as_non_root=True)
    return task.set_caching_options(False)


def on_gpu_node(
    task: PipelineTask,
    *,
    node_label: tuple[str, str] = GPU_NODE_LABEL,
    toleration: dict[str, str] = GPU_TOLERATION,
    timeout_s: int = RETRAIN_TIMEOUT_S,
    retries: int = RETRAIN_RETRIES,
) -> PipelineTask:
    in_cluster(task, "gpu")
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    kubernetes.add_node_selector(task, label_key=node_label[0], label_value=node_label[1])
    kubernetes.add_toleration(
        task, key=toleration["key"], operator=toleration["operator"], effect=toleration["effect"]
    )
    kubernetes.set_timeout(task, seconds=timeout_s)
    task.set_retry(num_retries=retries, backoff_duration="60s", backoff_factor=2.0)
    return task


@contextmanager
def recorded(pipeline: str, registry_url: dsl.PipelineParameterChannel | str) -> Iterator[None]:
    """Run the body under an exit handler that records the run (status, failed tasks, git
    SHA and image) in the registry's store and logs a line; a failed run is a metric."""
    from components.record_run import record_run

    exit_task = in_cluster(
        record_run(
            registry_url=registry_url,
            pipeline=pipeline,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        )
    )
    with dsl.ExitHandler(exit_task, name="run"):
        yield
