"""Liveness and readiness of an instance (served over HTTP by cstreams.metrics_http).

    GET /health/live   200 while the instance runs (its loop has not stopped on an error),
                       else 503: an orchestrator restarts it
    GET /health/ready  200 once the instance is a group member with an assignment and every
                       assigned task has restored its stores and is running; 503 while it
                       starts, joins the group, rebalances (between a revocation and the next
                       assignment), restores or stops

The body is JSON: {"live": ..., "ready": ..., "state": ...}, state one of starting, joining,
rebalancing, restoring, running, stopping, failed. A supervisor of worker processes
(cstreams.workers) is ready when every worker is alive and ready, and live while it has not
given up restarting them.

Kubernetes:

    livenessProbe:  {httpGet: {path: /health/live, port: 9090}, periodSeconds: 10}
    readinessProbe: {httpGet: {path: /health/ready, port: 9090}, periodSeconds: 5}

with the port given as ``App(metrics_port=9090)`` or ``cstreams run --metrics-port 9090``. A
restore can take long on a large store: give the readiness probe no failureThreshold that kills
the pod (readiness never does), and keep the liveness probe on /health/live.
"""

from __future__ import annotations

STARTING = "starting"
JOINING = "joining"
REBALANCING = "rebalancing"
RESTORING = "restoring"
RUNNING = "running"
STOPPING = "stopping"
FAILED = "failed"


def status(stream) -> dict:
    """{"live": bool, "ready": bool, "state": str} of a StreamThread (any thread may ask)."""
    if stream.error is not None:
        return {"live": False, "ready": False, "state": FAILED}
    tasks = stream.tasks
    if stream.stop_event.is_set():
        state = STOPPING
    elif tasks is None or stream.consumer is None:
        state = STARTING
    elif not tasks.assigned:
        state = REBALANCING if tasks.tasks or tasks.closed_task_metrics else JOINING
    elif stream.restorer.active or any(mt.state != RUNNING
                                       for mt in list(tasks.tasks.values())):
        state = RESTORING
    else:
        state = RUNNING
    return {"live": True, "ready": state == RUNNING, "state": state}


def not_started() -> dict:
    return {"live": True, "ready": False, "state": STARTING}
