"""Where the LSTM retrain runs on a cluster: one helper, so every pipeline asks for the GPU
node the same way. The local runner ignores all of it."""

from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
RETRAIN_TIMEOUT_S = 2 * 3600
RETRAIN_RETRIES = 2


def on_gpu_node(
    task: PipelineTask,
    *,
    node_label: tuple[str, str] = GPU_NODE_LABEL,
    toleration: dict[str, str] = GPU_TOLERATION,
    timeout_s: int = RETRAIN_TIMEOUT_S,
    retries: int = RETRAIN_RETRIES,
) -> PipelineTask:
    task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
    task.set_memory_request("8G").set_cpu_request("2")
    kubernetes.add_node_selector(task, label_key=node_label[0], label_value=node_label[1])
    kubernetes.add_toleration(
        task, key=toleration["key"], operator=toleration["operator"], effect=toleration["effect"]
    )
    kubernetes.set_timeout(task, seconds=timeout_s)
    task.set_retry(num_retries=retries, backoff_duration="60s", backoff_factor=2.0)
    return task
