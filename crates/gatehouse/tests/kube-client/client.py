#!/usr/bin/env python3
"""The official Kubernetes Python client through Gatehouse, for
crates/gatehouse/tests/kubernetes.rs: loads the kubeconfig `gatehouse
kubeconfig` wrote (its exec credential plugin included), then prints one JSON
object per check on stdout for the Rust test to assert on:

    {"check": "pods", "names": [...]}
    {"check": "secret", "password": "<data.password, base64-decoded>"}
    {"check": "delete", "status": 403, "reason": "<the Status message>"}
    {"check": "exec", "output": "<stdout and stderr of the command>"}

Usage: client.py KUBECONFIG
"""

import base64
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream


def main():
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    pods = core.list_namespaced_pod("prod")
    print(json.dumps({"check": "pods", "names": [p.metadata.name for p in pods.items]}), flush=True)

    secret = core.read_namespaced_secret("db-creds", "prod")
    password = base64.b64decode(secret.data["password"]).decode("utf-8", "replace")
    print(json.dumps({"check": "secret", "password": password}), flush=True)

    try:
        apps.delete_namespaced_deployment("web", "prod")
        print(json.dumps({"check": "delete", "status": 200, "reason": ""}), flush=True)
    except ApiException as e:
        message = json.loads(e.body).get("message", "") if e.body else ""
        print(json.dumps({"check": "delete", "status": e.status, "reason": message}), flush=True)

    # exec over WebSocket (this client speaks v4.channel.k8s.io).
    output = stream(core.connect_get_namespaced_pod_exec, "web-1", "prod",
                    command=["sh", "-c", "echo from-python; echo to-stderr >&2"],
                    stderr=True, stdin=False, stdout=True, tty=False)
    print(json.dumps({"check": "exec", "output": output}), flush=True)


if __name__ == "__main__":
    main()
