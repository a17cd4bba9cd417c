#!/usr/bin/env python3
"""Kubernetes API test server for Gatehouse's kube end-to-end tests.

This is NOT a Kubernetes API server. It is a small in-memory stand-in for a
real kube-apiserver (Python stdlib only, ThreadingHTTPServer), which cannot
run on the test machines. The Rust tests in crates/gatehouse/tests/ start it
as a child process, wait for the ready file, then point real kubectl binaries
at the gateway in front of it and check what reached (and came back from)
this server. Nothing here is part of the gateway itself.

Usage:
    python3 server.py --port 0 --ready-file PATH --token TOKEN
        [--tls-cert PEM --tls-key PEM] [--log PATH]

It binds 127.0.0.1:PORT (0 = any free port) and, once listening, writes the
bound port number followed by a newline to PATH atomically (tmp + rename).
With --tls-cert/--tls-key it serves HTTPS (ALPN http/1.1 only, handshake in
the connection's thread); without them, plain HTTP/1.1 with keep-alive.
kubectl only sends a kubeconfig's credentials to https:// servers, so tests
that drive kubectl need TLS; plain HTTP suits curl and the gateway's own
upstream leg. Every request must carry "Authorization: Bearer TOKEN" exactly, otherwise
401 with a Status object (reason Unauthorized). With --log PATH each request
is appended, as it arrives, as one JSON line and flushed:
    {"method", "path", "query" (raw query string), "headers" (lowercased
     name -> value, repeats joined with ", ", authorization and impersonate-*
     included), "header_list" ([name, value] pairs as received, repeats kept),
     "body" (text, "" when empty), and "body_base64" too when the body is
     not UTF-8 (protobuf)}
Upgraded connections (exec, attach, port-forward) add one line as each
session ends:
    {"event": "exec_end", "path", "command" (the argv asked for; ["cat"] for
     attach), "exit_code" (null if it never started), "protocol" (the chosen
     subprotocol), "pod", "namespace", "container", "upgrade" ("websocket" or
     "SPDY/3.1"), and "error" or "client_gone": true when so}
    {"event": "portforward_end", "path", "port", "request_id",
     "bytes_to_pod", "bytes_from_pod", "error" (null, or the text sent on the
     error stream), "protocol", "upgrade", "pod", "namespace"}
Exec and attach run real processes on this host, each in its pod's
directory POD_ROOT/NS/NAME, where POD_ROOT is a new "pods-*" directory made
at start next to the ready file and removed at a clean exit (a harness that
removes the ready file's directory removes it too); port-forward connects to
ports on this host's loopback.

Behaviours modelled (JSON everywhere, never HTML; responses are never
compressed, whatever Accept-Encoding says):
  * Objects: namespaces (default, prod, dev), pods, secrets, configmaps,
    events (always empty; kubectl describe lists them) in core v1;
    deployments in apps/v1. Seed data: prod has pod web-1, deployment web
    (2 replicas), secret db-creds (with a last-applied-configuration
    annotation repeating its values) and configmap app-config; dev has pod
    dev-1 and secret dev-token. One global resourceVersion counter; objects
    get uid, resourceVersion, creationTimestamp, and deployments generation.
    Pods are "Running" and deployments fully available the moment they exist.
  * CRUD: list (one namespace or all), get, create (POST, generateName,
    409 AlreadyExists), update (PUT, resourceVersion precondition -> 409
    Conflict), patch, delete (pods answer the deleted pod, others a Success
    Status; deleting a namespace deletes its contents at once), delete of a
    namespaced collection (answers the list of deleted objects). 404 NotFound
    Status with details {name, kind[, group]}, 400 on a malformed body.
    dryRun=All validates and answers but changes nothing.
  * PATCH: application/merge-patch+json is RFC 7386 JSON merge patch.
    application/strategic-merge-patch+json is a merge patch that also
    understands kubectl's directives ($setElementOrder/..., $retainKeys,
    $deleteFromPrimitiveList/..., $patch: replace|delete) and merges the
    well-known keyed lists (containers by name, ports by containerPort, ...).
    json-patch and apply-patch (server-side apply) answer 415.
  * Protobuf: kubectl 1.33's typed clients (create secret/configmap/
    namespace/deployment, auth can-i/whoami, describe) send bodies as
    application/vnd.kubernetes.protobuf and prefer it in Accept. Bodies of
    kinds Secret, ConfigMap, Namespace, Deployment (the fields kubectl create
    deployment sets), SelfSubjectAccessReview, SelfSubjectReview and
    DeleteOptions are decoded; others answer 415. Answers are always JSON,
    which those clients also accept.
  * Selectors: labelSelector (k=v, k==v, k!=v, k, !k, k in (a,b), k notin
    (a,b)); fieldSelector (=, ==, != on any dotted path, e.g. metadata.name).
  * Tables: Accept "application/json;as=Table;v=v1;g=meta.k8s.io" (or
    v1beta1) gives a meta.k8s.io Table for lists, single objects and watch
    events; rows carry PartialObjectMetadata (includeObject=Metadata, the
    default), the full object (Object) or nothing (None).
  * Watch: ?watch=1|true on a collection path, chunked application/json, one
    event per line, flushed per event. No resourceVersion (or "0"): ADDED for
    everything first. Otherwise it replays the kept history (last 1000
    changes) newer than that version; an evicted version gets one ERROR
    event (Status 410 Expired). sendInitialEvents=true ends the initial
    ADDED events with a BOOKMARK annotated k8s.io/initial-events-end.
    timeoutSeconds ends the stream; so does the client going away.
  * Discovery: /version (v1.33.0), /api, /apis, /api/v1, /apis/{group}, and
    /apis/{group}/{version} for apps, authorization.k8s.io and
    authentication.k8s.io (v1, plus v1beta1 for kubectl 1.27's auth whoami).
    /api and /apis also speak aggregated discovery:
    when Accept lists "application/json;g=apidiscovery.k8s.io;v=v2;
    as=APIGroupDiscoveryList" or its v2beta1 form, the first of those the
    client lists is answered as an APIGroupDiscoveryList with that exact
    Content-Type (kubectl 1.27 asks for v2beta1, newer ones for v2 first);
    otherwise the legacy APIVersions / APIGroupList forms.
  * Subresources: deployments/scale (GET/PUT/PATCH, autoscaling/v1 Scale);
    pods/log (text/plain, 3 lines "line N: user=alice@example.com card=4111
    1111 1111 1111"; tailLines, limitBytes, timestamps, container; with
    follow=true a new line every 200 ms for 5 s, chunked, flushed per line).
    pods/exec, pods/attach and pods/portforward: see the next item.
  * Exec, attach, port-forward (GET or POST; the pod must exist, else 404;
    a request that is not an upgrade gets 400). Both upgrades are served:
    kubectl 1.27-1.29 exec over SPDY; 1.30+ try a WebSocket (v5 only) and
    fall back to SPDY when that upgrade fails or with
    KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false. Port-forward is SPDY up to 1.30
    and SPDY inside a WebSocket from 1.31 (KUBECTL_PORT_FORWARD_WEBSOCKETS).
    - WebSocket (RFC 6455; 101 with Sec-WebSocket-Accept and the chosen
      Sec-WebSocket-Protocol): exec/attach speak, in this order of
      preference, v5.channel.k8s.io, v4.channel.k8s.io,
      v4.base64.channel.k8s.io, v3/v2.channel.k8s.io, channel.k8s.io,
      base64.channel.k8s.io (none offered: channel.k8s.io; none supported:
      400). A message is one channel byte (0 stdin, 1 stdout, 2 stderr,
      3 error/status, 4 resize; base64 kinds: an ASCII digit, then base64)
      and data; v5 adds [255, N]: the client closed stream N (stdin EOF).
      The server ends with the status on channel 3 and a close frame 1000.
      Pings get pongs, fragments are joined, an unmasked client frame gets
      close 1002. Without v5 stdin cannot be closed (as in a real cluster).
    - SPDY/3.1 (101 with Upgrade: SPDY/3.1 and X-Stream-Protocol-Version,
      the first of the client's list among v4.channel.k8s.io, v3, v2 and
      channel.k8s.io; 403 when none): the client opens one stream per
      streamtype header (error, stdin, stdout, stderr, resize), each
      answered with SYN_REPLY; the process starts once all the query calls
      for exist (30 s at most). At the end: FIN on stdout/stderr, the status
      and FIN on the error stream, FIN on the others, GOAWAY, half-close.
      Header blocks share one zlib context (SPDY/3 dictionary) per
      direction; PINGs are echoed; data received is acknowledged with
      WINDOW_UPDATE (stream and session) but windows are never waited for
      (kubectl's spdystream sends no WINDOW_UPDATE).
    The status (v4/v5) is kubelet's: {"metadata":{},"status":"Success"} or
    Failure, reason NonZeroExitCode, details.causes [{"reason":"ExitCode",
    "message":"N"}] (kubectl then exits N); v1-v3 get a failure's message as
    text. A command not found is Failure/InternalError (code 500).
    exec runs the command argv as a real process (no shell unless the argv
    is one, e.g. sh -c) with cwd the pod directory, seeded with hello.txt
    ("hello from NAME\n") and tmp/. Arguments after the first that are
    absolute paths are made relative to it (/tmp/x -> tmp/x, / -> .),
    except under /dev and /proc, so kubectl cp's "tar cf - /tmp/x" and
    "tar -xmf - -C /tmp" work inside it. Not a sandbox: scripts see the
    host. stdin, stdout, stderr follow the query; tty=true runs it on a pty
    (its controlling terminal, TERM=xterm, output on stdout, no stderr as
    with kubelet) sized by the client's resize messages ({"Width","Height"}
    JSON; 80x24 unless one comes within 0.5 s), resized live; stdin EOF on
    a tty is typed as ^D. A client that leaves first gets the process group
    killed. attach models the container's main process as a fresh "cat"
    per attach: stdin echoed to stdout, Success when stdin closes.
    port-forward, over SPDY (portforward.k8s.io) or a WebSocket carrying
    SPDY (SPDY/3.1+portforward.k8s.io: the SPDY byte stream cut into binary
    messages anywhere): each forwarded connection is a pair of client
    streams (streamtype error and data, headers port and requestid) and
    becomes a TCP connection to 127.0.0.1:port on this host. Bytes flow
    both ways, half-closes pass as FIN / shutdown, a failed connect writes
    kubelet's "error forwarding port ..." text on the error stream (kubectl
    then drops the whole forward). Plain WebSocket port-forward
    (v4.channel.k8s.io or channel.k8s.io with ?ports=) too: channel 2i data
    and 2i+1 errors for the i-th port, each opened by the port number (2
    bytes, little-endian); the target's EOF ends that port's forward.
  * Reviews: POST selfsubjectaccessreviews (authorization.k8s.io/v1) is
    always allowed and echoes the spec (kubectl auth can-i); POST
    selfsubjectreviews (authentication.k8s.io/v1, kubectl auth whoami)
    reports the Impersonate-User/-Group/-Uid/-Extra-* headers it received
    (or user "gatehouse-test-user" without them).
  * OpenAPI: /openapi/v3 (root and one document per group version) holds
    only PATCH operations that declare the fieldValidation query parameter,
    no schemas. That is enough for kubectl 1.29+ to validate server-side
    (it sends fieldValidation=Strict, accepted and not checked here) and to
    compute apply's strategic patches from its built-in types. /openapi/v2
    answers 404, so kubectl 1.27 and 1.28 apply/create -f need --validate=false.
    /healthz, /livez, /readyz answer "ok".

SIGTERM/SIGINT exit cleanly with status 0, killing exec/attach processes
still running and removing the pod directories.
"""

import argparse
import base64
import collections
import copy
import errno
import fcntl
import hashlib
import heapq
import json
import os
import random
import re
import select
import selectors
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
HISTORY_MAX = 1000
LOG_LINE = "line %d: user=alice@example.com card=4111 1111 1111 1111"
LOG_EXISTING = 3
FOLLOW_INTERVAL = 0.2
FOLLOW_SECONDS = 5.0
DEFAULT_USER = "gatehouse-test-user"
JSON = "application/json"
TABLE_CT = "application/json;as=Table;v=%s;g=meta.k8s.io"
DISCOVERY_CT = "application/json;g=apidiscovery.k8s.io;v=%s;as=APIGroupDiscoveryList"
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


def now():
    return datetime.now(timezone.utc)


def rfc3339(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def human_age(stamp):
    """Age column text, like the API server's duration.HumanDuration."""
    try:
        t = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    secs = int((now() - t).total_seconds())
    if secs < -1:
        return "<invalid>"
    secs = max(secs, 0)
    if secs < 120:
        return "%ds" % secs
    mins = secs // 60
    if mins < 10:
        return "%dm%ds" % (mins, secs % 60) if secs % 60 else "%dm" % mins
    if mins < 180:
        return "%dm" % mins
    hours = mins // 60
    if hours < 8:
        return "%dh%dm" % (hours, mins % 60) if mins % 60 else "%dh" % hours
    if hours < 48:
        return "%dh" % hours
    if hours < 24 * 8:
        return "%dd%dh" % divmod(hours, 24) if hours % 24 else "%dd" % (hours // 24)
    if hours < 24 * 365 * 2:
        return "%dd" % (hours // 24)
    return "%dy" % (hours // (24 * 365))


# ---- errors ----------------------------------------------------------------


def status_obj(code, reason, message, details=None):
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason}
    if details:
        out["details"] = details
    out["code"] = code
    return out


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.status = status_obj(code, reason, message, details)
        self.code = code


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def details_for(res, name):
    d = {"name": name}
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (res.qualified, name),
                    details_for(res, name))


def invalid(res, name, message):
    return ApiError(422, "Invalid", '%s "%s" is invalid: %s' % (res.kind, name, message),
                    details_for(res, name))


# ---- resource registry -------------------------------------------------------


def col(name, typ="string", fmt="", desc="", priority=0):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": priority}


NAME_COL = col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE_COL = col("Age", desc="CreationTimestamp is a timestamp representing the server time "
                          "when this object was created.")


def meta(o):
    return o.get("metadata") or {}


def pod_cells(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    statuses = st.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    phase = "Terminating" if meta(o).get("deletionTimestamp") else (st.get("reason") or st.get("phase") or "Pending")
    return [meta(o).get("name"), "%d/%d" % (ready, len(spec.get("containers") or [])), phase,
            restarts, human_age(meta(o).get("creationTimestamp")),
            st.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>", "<none>"]


def deploy_cells(o):
    spec, st = o.get("spec") or {}, o.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    labels = (spec.get("selector") or {}).get("matchLabels") or {}
    return [meta(o).get("name"),
            "%d/%d" % (st.get("readyReplicas") or 0, spec.get("replicas") or 0),
            st.get("updatedReplicas") or 0, st.get("availableReplicas") or 0,
            human_age(meta(o).get("creationTimestamp")),
            ",".join(c.get("name", "") for c in containers),
            ",".join(c.get("image", "") for c in containers),
            ",".join("%s=%s" % kv for kv in sorted(labels.items())) or "<none>"]


def secret_cells(o):
    return [meta(o).get("name"), o.get("type") or "Opaque", len(o.get("data") or {}),
            human_age(meta(o).get("creationTimestamp"))]


def configmap_cells(o):
    return [meta(o).get("name"), len(o.get("data") or {}) + len(o.get("binaryData") or {}),
            human_age(meta(o).get("creationTimestamp"))]


def namespace_cells(o):
    return [meta(o).get("name"), (o.get("status") or {}).get("phase") or "Active",
            human_age(meta(o).get("creationTimestamp"))]


def event_cells(o):
    inv = o.get("involvedObject") or {}
    return [human_age(o.get("lastTimestamp") or meta(o).get("creationTimestamp")),
            o.get("type", ""), o.get("reason", ""),
            "%s/%s" % ((inv.get("kind") or "").lower(), inv.get("name", "")), o.get("message", "")]


Sub = collections.namedtuple("Sub", "name group version kind verbs")
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


class Resource:
    def __init__(self, plural, singular, kind, group="", version="v1", namespaced=True,
                 short=(), categories=(), verbs=ALL_VERBS, subs=(), columns=(), cells=None,
                 stored=True):
        self.plural, self.singular, self.kind = plural, singular, kind
        self.group, self.version, self.namespaced = group, version, namespaced
        self.short, self.categories, self.verbs, self.subs = short, categories, verbs, subs
        self.columns, self.cells, self.stored = list(columns), cells, stored

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def qualified(self):
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural


RESOURCES = [
    Resource("namespaces", "namespace", "Namespace", namespaced=False, short=("ns",),
             verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
             columns=[NAME_COL, col("Status", desc="The status of the namespace"), AGE_COL],
             cells=namespace_cells),
    Resource("pods", "pod", "Pod", short=("po",), categories=("all",),
             subs=(Sub("log", "", "v1", "Pod", ("get",)),
                   Sub("exec", "", "v1", "PodExecOptions", ("create", "get")),
                   Sub("attach", "", "v1", "PodAttachOptions", ("create", "get")),
                   Sub("portforward", "", "v1", "PodPortForwardOptions", ("create", "get"))),
             columns=[NAME_COL,
                      col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
                      col("Status", desc="The aggregate status of the containers in this pod."),
                      col("Restarts", "integer",
                          desc="The number of times the containers in this pod have been restarted."),
                      AGE_COL,
                      col("IP", desc="IP address allocated to the pod.", priority=1),
                      col("Node", desc="Name of the Node this pod is assigned to.", priority=1),
                      col("Nominated Node", desc="Name of the Node nominated for preemption.", priority=1),
                      col("Readiness Gates", desc="Pod readiness gates.", priority=1)],
             cells=pod_cells),
    Resource("secrets", "secret", "Secret",
             columns=[NAME_COL, col("Type", desc="Used to facilitate programmatic handling of secret data."),
                      col("Data", "integer", desc="Number of keys in the secret."), AGE_COL],
             cells=secret_cells),
    Resource("configmaps", "configmap", "ConfigMap", short=("cm",),
             columns=[NAME_COL, col("Data", "integer", desc="Number of keys in the config map."), AGE_COL],
             cells=configmap_cells),
    Resource("events", "event", "Event", short=("ev",),
             columns=[col("Last Seen"), col("Type"), col("Reason"), col("Object"), col("Message")],
             cells=event_cells),
    Resource("deployments", "deployment", "Deployment", group="apps", short=("deploy",),
             categories=("all",),
             subs=(Sub("scale", "autoscaling", "v1", "Scale", ("get", "patch", "update")),),
             columns=[NAME_COL,
                      col("Ready", desc="Number of the pod with ready state"),
                      col("Up-to-date", "integer", desc="Total number of non-terminated pods targeted by "
                          "this deployment that have the desired template spec."),
                      col("Available", "integer", desc="Total number of available pods (ready for at "
                          "least minReadySeconds) targeted by this deployment."),
                      AGE_COL,
                      col("Containers", desc="Names of each container in the template.", priority=1),
                      col("Images", desc="Images referenced by each container in the template.", priority=1),
                      col("Selector", desc="Label selector for pods.", priority=1)],
             cells=deploy_cells),
    Resource("selfsubjectaccessreviews", "selfsubjectaccessreview", "SelfSubjectAccessReview",
             group="authorization.k8s.io", namespaced=False, verbs=("create",), stored=False),
    Resource("selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview",
             group="authentication.k8s.io", namespaced=False, verbs=("create",), stored=False),
    # kubectl 1.27's "auth whoami" only knows the beta (and alpha) version.
    Resource("selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview",
             group="authentication.k8s.io", version="v1beta1", namespaced=False,
             verbs=("create",), stored=False),
]
BY_GV = collections.defaultdict(dict)
for _r in RESOURCES:
    BY_GV[(_r.group, _r.version)][_r.plural] = _r
RES = {r.plural: r for r in RESOURCES if r.version == "v1"}
GROUPS = {"apps": ["v1"], "authorization.k8s.io": ["v1"],  # order of /apis; preferred first
          "authentication.k8s.io": ["v1", "v1beta1"]}


def legacy_resource_list(group, version):
    out = []
    for r in BY_GV[(group, version)].values():
        e = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
             "kind": r.kind, "verbs": list(r.verbs)}
        if r.short:
            e["shortNames"] = list(r.short)
        if r.categories:
            e["categories"] = list(r.categories)
        out.append(e)
        for s in r.subs:
            e = {"name": "%s/%s" % (r.plural, s.name), "singularName": "",
                 "namespaced": r.namespaced, "kind": s.kind, "verbs": list(s.verbs)}
            if (s.group, s.version) != (group, version):
                e["group"], e["version"] = s.group, s.version
            out.append(e)
    gv = "%s/%s" % (group, version) if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


def discovery_group(group, versions):
    return {"metadata": {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None},
            "versions": [discovery_version(group, v) for v in versions]}


def discovery_version(group, version):
    resources = []
    for r in BY_GV[(group, version)].values():
        e = {"resource": r.plural,
             "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
             "scope": "Namespaced" if r.namespaced else "Cluster",
             "singularResource": r.singular, "verbs": list(r.verbs)}
        if r.short:
            e["shortNames"] = list(r.short)
        if r.categories:
            e["categories"] = list(r.categories)
        if r.subs:
            e["subresources"] = [{"subresource": s.name,
                                  "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                                  "verbs": list(s.verbs)} for s in r.subs]
        resources.append(e)
    return {"version": version, "resources": resources, "freshness": "Current"}


def discovery_list(version, groups):
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/" + version,
            "metadata": {}, "items": [discovery_group(g, GROUPS.get(g, ["v1"])) for g in groups]}


def api_group(group):
    gvs = [{"groupVersion": "%s/%s" % (group, v), "version": v} for v in GROUPS[group]]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def openapi_v3_root():
    paths = {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=0"}}
    for g, versions in GROUPS.items():
        for v in versions:
            paths["apis/%s/%s" % (g, v)] = {"serverRelativeURL": "/openapi/v3/apis/%s/%s?hash=0" % (g, v)}
    return {"paths": paths}


def openapi_v3_gv(group, version):
    """Just enough OpenAPI v3 for kubectl to see that PATCH takes fieldValidation.

    kubectl then validates by sending fieldValidation=Strict (not checked
    here) instead of downloading schemas; it still finds no strategic-merge
    schema here and falls back to its built-in types for apply's patches.
    """
    paths = {}
    for r in BY_GV[(group, version)].values():
        if not r.stored:
            continue
        prefix = "/apis/%s/%s" % (group, version) if group else "/api/" + version
        item = "%s/namespaces/{namespace}/%s/{name}" % (prefix, r.plural) if r.namespaced \
            else "%s/%s/{name}" % (prefix, r.plural)
        paths[item] = {"patch": {
            "operationId": "patch" + r.kind,
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "x-kubernetes-action": "patch",
            "parameters": [{"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for n in ("dryRun", "fieldManager", "fieldValidation", "force")],
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
            "paths": paths, "components": {}}


# ---- patches -------------------------------------------------------------------

MERGE_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name",
              "env": "name", "volumes": "name", "volumeMounts": "mountPath",
              "ports": "containerPort", "imagePullSecrets": "name", "conditions": "type",
              "hostAliases": "ip", "topologySpreadConstraints": "topologyKey"}


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def strip_directives(v):
    if isinstance(v, dict):
        return {k: strip_directives(x) for k, x in v.items() if not k.startswith("$")}
    if isinstance(v, list):
        return [strip_directives(x) for x in v
                if not (isinstance(x, dict) and x.get("$patch") == "delete")]
    return v


def strategic_patch(target, patch):
    """A merge patch that knows kubectl's strategic-merge directives and keyed lists."""
    if not isinstance(patch, dict):
        return strip_directives(patch)
    if patch.get("$patch") == "replace":
        return strip_directives(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(out.get(field), list) and isinstance(v, list):
                out[field] = [x for x in out[field] if x not in v]
        if k.startswith("$"):
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict):
            if v.get("$patch") == "delete":
                out.pop(k, None)
            else:
                out[k] = strategic_patch(out.get(k), v)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(out.get(k), list):
            out[k] = merge_keyed_list(out[k], v, MERGE_KEYS[k])
        else:
            out[k] = strip_directives(v)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        for k in list(out):
            if k not in retain and k not in patch:
                out.pop(k)
    return out


def merge_keyed_list(current, patch, key):
    if any(not isinstance(x, dict) or (key not in x and x.get("$patch") != "replace") for x in patch):
        return strip_directives(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return strip_directives([x for x in patch if x.get("$patch") != "replace"])
    out = copy.deepcopy(current)
    for item in patch:
        idx = next((i for i, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                out.pop(idx)
        elif idx is None:
            out.append(strip_directives(item))
        else:
            out[idx] = strategic_patch(out[idx], item)
    return out


def apply_patch(content_type, current, body):
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    if ct not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        raise ApiError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types "
                       "include: application/merge-patch+json, application/strategic-merge-patch+json"
                       " (this test server does not model %s)" % (ct or "an empty Content-Type"))
    patch = parse_json(body)
    if not isinstance(patch, dict):
        raise bad_request("the patch must be a JSON object")
    if ct == "application/merge-patch+json":
        return merge_patch(current, patch)
    return strategic_patch(current, patch)


def parse_json(body):
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad_request("the request body is not valid JSON: %s" % e)


# ---- protobuf request bodies -------------------------------------------------------
#
# kubectl 1.33's typed clients (create secret/configmap/namespace, auth can-i,
# describe, ...) send and prefer application/vnd.kubernetes.protobuf. Bodies
# are the 4-byte "k8s\0" prefix and a runtime.Unknown {typeMeta=1 {apiVersion=1,
# kind=2}, raw=2}. Only the kinds below are decoded (by field number, from the
# published generated.proto files); answers are always JSON, which the same
# clients accept.

PB_MAGIC = b"k8s\x00"
PB_CT = "application/vnd.kubernetes.protobuf"
STR_MAP = ("map", "string", "string")
PB_META = {1: ("name", "string"), 2: ("generateName", "string"), 3: ("namespace", "string"),
           5: ("uid", "string"), 6: ("resourceVersion", "string"), 7: ("generation", "int+"),
           11: ("labels", STR_MAP), 12: ("annotations", STR_MAP),
           14: ("finalizers", ("repeated", "string"))}
PB_SCHEMAS = {
    "Secret": {1: ("metadata", PB_META), 2: ("data", ("map", "string", "bytes")),
               3: ("type", "string"), 4: ("stringData", STR_MAP), 5: ("immutable", "bool")},
    "ConfigMap": {1: ("metadata", PB_META), 2: ("data", STR_MAP),
                  3: ("binaryData", ("map", "string", "bytes")), 4: ("immutable", "bool")},
    "Namespace": {1: ("metadata", PB_META),
                  2: ("spec", {1: ("finalizers", ("repeated", "string"))}),
                  3: ("status", {1: ("phase", "string")})},
    "SelfSubjectAccessReview": {1: ("metadata", PB_META), 2: ("spec", {
        1: ("resourceAttributes", {1: ("namespace", "string"), 2: ("verb", "string"),
                                   3: ("group", "string"), 4: ("version", "string"),
                                   5: ("resource", "string"), 6: ("subresource", "string"),
                                   7: ("name", "string")}),
        2: ("nonResourceAttributes", {1: ("path", "string"), 2: ("verb", "string")})})},
    "SelfSubjectReview": {1: ("metadata", PB_META)},
    # Deployment: only the fields kubectl create deployment fills in.
    "Deployment": {1: ("metadata", PB_META), 2: ("spec", {
        1: ("replicas", "int"),
        2: ("selector", {1: ("matchLabels", STR_MAP)}),
        3: ("template", {1: ("metadata", PB_META), 2: ("spec", {
            2: ("containers", ("repeated", {
                1: ("name", "string"), 2: ("image", "string"),
                3: ("command", ("repeated", "string")), 4: ("args", ("repeated", "string")),
                6: ("ports", ("repeated", {1: ("name", "string"), 3: ("containerPort", "int"),
                                           4: ("protocol", "string")})),
                7: ("env", ("repeated", {1: ("name", "string"), 2: ("value", "string")})),
                14: ("imagePullPolicy", "string")})),
            3: ("restartPolicy", "string"), 6: ("dnsPolicy", "string")})})})},
    "DeleteOptions": {1: ("gracePeriodSeconds", "int"),
                      2: ("preconditions", {1: ("uid", "string"), 2: ("resourceVersion", "string")}),
                      4: ("propagationPolicy", "string"), 5: ("dryRun", ("repeated", "string"))},
}


def pb_varint(buf, i):
    shift = value = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def pb_fields(buf):
    """(field number, wire type, value) triples of one protobuf message."""
    i, out = 0, []
    while i < len(buf):
        key, i = pb_varint(buf, i)
        wt = key & 7
        if wt == 0:
            v, i = pb_varint(buf, i)
        elif wt == 2:
            n, i = pb_varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            v, i = buf[i:i + n], i + n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.append((key >> 3, wt, v))
    return out


def pb_scalar(typ, v):
    if typ == "string":
        return v.decode("utf-8")
    if typ == "bytes":
        return base64.b64encode(v).decode("ascii")
    if typ in ("int", "int+"):  # int+: zero means unset
        return (v - (1 << 64) if v >= 1 << 63 else v) or ("" if typ == "int+" else 0)
    if typ == "bool":
        return bool(v)
    return pb_message(typ, v)


def pb_message(schema, buf):
    out = {}
    for num, _, v in pb_fields(buf):
        if num not in schema:
            continue  # e.g. creationTimestamp, managedFields: not needed here
        name, typ = schema[num]
        if isinstance(typ, tuple) and typ[0] == "map":
            entry = dict((n, val) for n, _, val in pb_fields(v))
            out.setdefault(name, {})[pb_scalar(typ[1], entry.get(1, b""))] = \
                pb_scalar(typ[2], entry.get(2, b""))
        elif isinstance(typ, tuple) and typ[0] == "repeated":
            out.setdefault(name, []).append(pb_scalar(typ[1], v))
        else:
            value = pb_scalar(typ, v)
            if value != "":
                out[name] = value
    return out


def decode_protobuf(body):
    if not body.startswith(PB_MAGIC):
        raise bad_request("protobuf body without the k8s envelope prefix")
    try:
        env = dict((n, v) for n, _, v in pb_fields(body[len(PB_MAGIC):]))
        tm = dict((n, v) for n, _, v in pb_fields(env.get(1, b"")))
        api_version, kind = tm.get(1, b"").decode("utf-8"), tm.get(2, b"").decode("utf-8")
        if kind not in PB_SCHEMAS:
            raise ApiError(415, "UnsupportedMediaType",
                           "this test server decodes protobuf bodies only for %s, not %s; send JSON"
                           % (", ".join(sorted(PB_SCHEMAS)), kind or "an unnamed kind"))
        obj = {"kind": kind, "apiVersion": api_version}
        obj.update(pb_message(PB_SCHEMAS[kind], env.get(2, b"")))
        return obj
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request("the protobuf request body cannot be decoded: %s" % e)


def request_object(content_type, body):
    if (content_type or "").split(";", 1)[0].strip().lower() == PB_CT:
        return decode_protobuf(body)
    return parse_json(body)


# ---- selectors -----------------------------------------------------------------


def split_terms(s):
    terms, depth, cur = [], 0, ""
    for ch in s:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def parse_label_selector(s):
    reqs = []
    for t in split_terms(s or ""):
        m = re.match(r"^([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)$", t)
        if m:
            vals = [v.strip() for v in m.group(3).split(",") if v.strip()]
            reqs.append((m.group(1), m.group(2), vals))
            continue
        for op in ("!=", "==", "="):
            if op in t:
                k, v = (x.strip() for x in t.split(op, 1))
                if not k:
                    raise bad_request("unable to parse requirement: %r" % t)
                reqs.append((k, "!=" if op == "!=" else "=", [v]))
                break
        else:
            if t.startswith("!"):
                reqs.append((t[1:].strip(), "!exists", []))
            elif re.match(r"^[^\s!=(),]+$", t):
                reqs.append((t, "exists", []))
            else:
                raise bad_request("unable to parse requirement: %r" % t)
    return reqs


def labels_match(obj, reqs):
    labels = meta(obj).get("labels") or {}
    for k, op, vals in reqs:
        have = k in labels
        if op == "=" and labels.get(k) != vals[0]:
            return False
        if op == "!=" and have and labels[k] == vals[0]:
            return False
        if op == "exists" and not have:
            return False
        if op == "!exists" and have:
            return False
        if op == "in" and labels.get(k) not in vals:
            return False
        if op == "notin" and have and labels[k] in vals:
            return False
    return True


def parse_field_selector(s):
    reqs = []
    for t in split_terms(s or ""):
        for op in ("!=", "==", "="):
            if op in t:
                k, v = t.split(op, 1)
                reqs.append((k.strip(), op == "!=", v.strip()))
                break
        else:
            raise bad_request("invalid selector: %r; can't understand %r" % (s, t))
    return reqs


def fields_match(obj, reqs):
    for path, negate, want in reqs:
        v = obj
        for part in path.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        have = "" if v is None else (json.dumps(v) if isinstance(v, bool) else str(v))
        if (have == want) == negate:
            return False
    return True


# ---- the store -------------------------------------------------------------------

Change = collections.namedtuple("Change", "rv type plural ns obj")


def random_suffix(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


class Store:
    """All objects, one resourceVersion counter and a bounded change history.

    Every method takes self.cond (a Condition around one lock); watchers wait
    on it and are woken by each recorded change.
    """

    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 0
        self.objects = {r.plural: {} for r in RESOURCES if r.stored}
        self.history = collections.deque()
        self.floor = 0  # changes at or below this version have been evicted

    def _record(self, etype, res, ns, obj):
        self.history.append(Change(self.rv, etype, res.plural, ns, copy.deepcopy(obj)))
        while len(self.history) > HISTORY_MAX:
            self.floor = self.history.popleft().rv
        self.cond.notify_all()

    def _key(self, res, ns, name):
        return (ns if res.namespaced else "", name)

    def current_rv(self):
        with self.cond:
            return str(self.rv)

    def list(self, res, ns, lsel, fsel):
        with self.cond:
            return self._matching(res, ns, lsel, fsel), str(self.rv)

    def _matching(self, res, ns, lsel, fsel):
        out = []
        for (ons, _), o in sorted(self.objects[res.plural].items()):
            if ns is not None and ons != ns:
                continue
            if labels_match(o, lsel) and fields_match(o, fsel):
                out.append(copy.deepcopy(o))
        return out

    def get(self, res, ns, name):
        with self.cond:
            o = self.objects[res.plural].get(self._key(res, ns, name))
            if o is None:
                raise not_found(res, name)
            return copy.deepcopy(o)

    def create(self, res, ns, obj, dry, stamp=None):
        with self.cond:
            md = obj["metadata"]
            if not md.get("name"):
                for _ in range(20):
                    md["name"] = md["generateName"] + random_suffix()
                    if self._key(res, ns, md["name"]) not in self.objects[res.plural]:
                        break
            name = md["name"]
            if res.namespaced and ("", ns) not in self.objects["namespaces"]:
                raise not_found(RES["namespaces"], ns)
            if self._key(res, ns, name) in self.objects[res.plural]:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (res.qualified, name),
                               details_for(res, name))
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = stamp or rfc3339(now())
            md.pop("resourceVersion", None)
            if res.plural == "deployments":
                md["generation"] = 1
            default_object(res, obj, None)
            if dry:
                return obj
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objects[res.plural][self._key(res, ns, name)] = copy.deepcopy(obj)
            self._record("ADDED", res, ns, obj)
            return obj

    def update(self, res, ns, name, mutate, dry):
        """mutate(current copy) returns the new object; it runs under the lock."""
        with self.cond:
            key = self._key(res, ns, name)
            cur = self.objects[res.plural].get(key)
            if cur is None:
                raise not_found(res, name)
            new = mutate(copy.deepcopy(cur))
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise bad_request("the object has no metadata")
            md, old_md = new["metadata"], cur["metadata"]
            want_rv = md.get("resourceVersion")
            if want_rv and want_rv != old_md["resourceVersion"]:
                raise ApiError(409, "Conflict",
                               'Operation cannot be fulfilled on %s "%s": the object has been modified; '
                               "please apply your changes to the latest version and try again"
                               % (res.qualified, name), details_for(res, name))
            if md.get("name", name) != name:
                raise bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                  % (md.get("name"), name))
            if res.namespaced and md.get("namespace", ns) != ns:
                raise bad_request("the namespace of the object (%s) does not match the namespace "
                                  "on the request (%s)" % (md.get("namespace"), ns))
            new["kind"], new["apiVersion"] = res.kind, res.api_version
            for k in ("name", "namespace", "uid", "creationTimestamp", "generation", "resourceVersion"):
                if k in old_md:
                    md[k] = old_md[k]
            if res.plural in ("pods", "deployments", "namespaces"):
                new["status"] = copy.deepcopy(cur.get("status"))  # status is a subresource
            if res.plural == "deployments" and new.get("spec") != cur.get("spec"):
                md["generation"] = int(old_md.get("generation") or 1) + 1
            default_object(res, new, cur)
            if new == cur or dry:
                return new
            self.rv += 1
            md["resourceVersion"] = str(self.rv)
            self.objects[res.plural][key] = copy.deepcopy(new)
            self._record("MODIFIED", res, ns, new)
            return new

    def delete(self, res, ns, name, dry, preconditions=None):
        with self.cond:
            key = self._key(res, ns, name)
            cur = self.objects[res.plural].get(key)
            if cur is None:
                raise not_found(res, name)
            pre = preconditions or {}
            if (pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]) or (
                    pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]):
                raise ApiError(409, "Conflict",
                               'Operation cannot be fulfilled on %s "%s": the precondition does not match'
                               % (res.qualified, name), details_for(res, name))
            if dry:
                return copy.deepcopy(cur)
            if res.plural == "namespaces":
                for r in RESOURCES:
                    if r.stored and r.namespaced:
                        for k in [k for k in self.objects[r.plural] if k[0] == name]:
                            self._remove(r, k)
            return self._remove(res, key)

    def _remove(self, res, key):
        obj = self.objects[res.plural].pop(key)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record("DELETED", res, key[0] or None, obj)
        return copy.deepcopy(obj)

    def delete_collection(self, res, ns, lsel, fsel, dry):
        with self.cond:
            victims = self._matching(res, ns, lsel, fsel)
            if dry:
                return victims, str(self.rv)
            out = [self._remove(res, self._key(res, ns, meta(o)["name"])) for o in victims]
            return out, str(self.rv)


def default_object(res, obj, old):
    """Fill server-side defaults and the (instantly converged) status."""
    rest = [(k, v) for k, v in obj.items() if k not in ("kind", "apiVersion")]
    obj.clear()
    obj["kind"], obj["apiVersion"] = res.kind, res.api_version
    obj.update(rest)
    md = obj["metadata"]
    if res.plural == "namespaces":
        md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = obj.get("status") or {"phase": "Active"}
    elif res.plural == "secrets":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.get("data") or {}
        if not isinstance(data, dict) or not isinstance(string_data, dict):
            raise invalid(res, md["name"], "data and stringData must be objects")
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode("utf-8")).decode("ascii")
        for k, v in data.items():
            try:
                base64.b64decode(v, validate=True)
            except (ValueError, TypeError):
                raise invalid(res, md["name"], "data[%s]: illegal base64 data" % k)
        if data:
            obj["data"] = data
    elif res.plural == "pods":
        spec = obj.setdefault("spec", {})
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise invalid(res, md["name"], "spec.containers: Required value")
        for c in containers:
            image = c.get("image", "")
            untagged = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            c.setdefault("imagePullPolicy", "Always" if untagged else "IfNotPresent")
            c.setdefault("resources", {})
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
        for k, v in (("restartPolicy", "Always"), ("dnsPolicy", "ClusterFirst"),
                     ("schedulerName", "default-scheduler"), ("serviceAccountName", "default"),
                     ("terminationGracePeriodSeconds", 30), ("nodeName", "node-1"),
                     ("enableServiceLinks", True), ("priority", 0), ("securityContext", {})):
            spec.setdefault(k, v)
        if old is None or not obj.get("status"):
            started = md["creationTimestamp"]
            obj["status"] = {
                "phase": "Running",
                "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                                "lastTransitionTime": started}
                               for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}],
                "podIP": "10.244.0.%d" % random.randint(2, 250),
                "startTime": started, "qosClass": "BestEffort",
                "containerStatuses": [{
                    "name": c.get("name"), "image": c.get("image"),
                    "imageID": "docker.io/library/%s@sha256:%s" % (c.get("image", "").split(":")[0], "0" * 64),
                    "containerID": "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex,
                    "ready": True, "started": True, "restartCount": 0,
                    "state": {"running": {"startedAt": started}}, "lastState": {},
                } for c in containers],
            }
            obj["status"]["podIPs"] = [{"ip": obj["status"]["podIP"]}]
    elif res.plural == "deployments":
        spec = obj.setdefault("spec", {})
        replicas = spec.setdefault("replicas", 1)
        if not isinstance(replicas, int) or replicas < 0:
            raise invalid(res, md["name"], "spec.replicas: Invalid value: must be >= 0")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        if not spec.get("strategy"):
            spec["strategy"] = {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        stamp = rfc3339(now())
        obj["status"] = {
            "observedGeneration": md.get("generation", 1),
            "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastUpdateTime": stamp, "lastTransitionTime": stamp},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": 'ReplicaSet "%s-5d8c9f7b6c" has successfully progressed.' % md["name"],
                 "lastUpdateTime": stamp, "lastTransitionTime": stamp}],
        }
        if old is not None and old.get("status", {}).get("replicas") == replicas:
            # Keep the old timestamps so a no-op update stays a no-op.
            obj["status"]["conditions"] = copy.deepcopy(old["status"]["conditions"])


def scale_of(dep):
    md = meta(dep)
    sel = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": md["name"], "namespace": md.get("namespace"), "uid": md.get("uid"),
                         "resourceVersion": md.get("resourceVersion"),
                         "creationTimestamp": md.get("creationTimestamp")},
            "spec": {"replicas": dep["spec"].get("replicas", 0)},
            "status": {"replicas": (dep.get("status") or {}).get("replicas", 0),
                       "selector": ",".join("%s=%s" % kv for kv in sorted(sel.items()))}}


def seed(store):
    t_ns = rfc3339(now() - timedelta(days=30))
    t_obj = rfc3339(now() - timedelta(days=2))

    def b64(s):
        return base64.b64encode(s.encode("utf-8")).decode("ascii")

    def put(plural, obj, ns=None, stamp=t_obj):
        if ns:
            obj["metadata"]["namespace"] = ns
        store.create(RES[plural], ns, obj, False, stamp)

    for ns in ("default", "prod", "dev"):
        put("namespaces", {"metadata": {"name": ns}}, stamp=t_ns)

    def pod(name, app):
        return {"metadata": {"name": name, "labels": {"app": app}},
                "spec": {"containers": [{"name": app, "image": "nginx:1.27",
                                         "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}

    put("pods", pod("web-1", "web"), "prod")
    put("deployments", {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
    }, "prod")
    data = {"username": b64("admin"), "password": b64("s3cret-pa55")}
    last_applied = json.dumps({"apiVersion": "v1", "data": data, "kind": "Secret",
                               "metadata": {"annotations": {}, "name": "db-creds", "namespace": "prod"},
                               "type": "Opaque"}, separators=(",", ":")) + "\n"
    put("secrets", {"metadata": {"name": "db-creds", "annotations": {
        "kubectl.kubernetes.io/last-applied-configuration": last_applied}},
        "type": "Opaque", "data": dict(data)}, "prod")
    put("configmaps", {"metadata": {"name": "app-config"},
                       "data": {"DATABASE_URL": "postgres://app:hunter2@db:5432/app",
                                "contact": "ops@example.com"}}, "prod")
    put("pods", pod("dev-1", "dev"), "dev")
    put("secrets", {"metadata": {"name": "dev-token"}, "type": "Opaque",
                    "data": {"token": b64("dev-token-value")}}, "dev")


STORE = Store()


# ---- content negotiation ---------------------------------------------------------


def negotiate(accept, allow_table=False, allow_discovery=False):
    """First acceptable entry of the Accept list: ("json"|"table"|"discovery", version)."""
    for part in (accept or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        if mt not in ("application/json", "application/*", "*/*", ""):
            continue  # protobuf, yaml, ...: not offered
        params = {}
        for f in fields[1:]:
            if "=" in f:
                k, v = f.split("=", 1)
                params[k.strip().lower()] = v.strip()
        kind, group, ver = params.get("as"), params.get("g"), params.get("v")
        if kind is None:
            return ("json", None)
        if (allow_table and kind == "Table" and group == "meta.k8s.io"
                and ver in ("v1", "v1beta1")):
            return ("table", ver)
        if (allow_discovery and kind == "APIGroupDiscoveryList"
                and group == "apidiscovery.k8s.io" and ver in ("v2", "v2beta1")):
            return ("discovery", ver)
    return ("json", None)


# ---- HTTP ------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gatehouse-test-kube-apiserver/1"
    token = ""
    log_file = None
    log_lock = threading.Lock()

    # ---- plumbing -------------------------------------------------------

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except DISCONNECTS:
            self.close_connection = True

    def handle(self):
        try:
            super().handle()
        except DISCONNECTS + (ssl.SSLError,):
            pass

    def finish(self):
        try:
            super().finish()
        except DISCONNECTS + (ssl.SSLError,):
            pass

    def send_error(self, code, message=None, explain=None):
        # Used by the stdlib for malformed requests and unknown methods.
        self.close_connection = True
        reason = {405: "MethodNotAllowed", 501: "MethodNotAllowed"}.get(code, "BadRequest")
        body = dumps(status_obj(code, reason, message or "bad request"))
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", JSON)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except DISCONNECTS:
            pass

    def read_body(self):
        """Read the request body (Content-Length or chunked) so keep-alive stays in sync."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionResetError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def common_headers(self):
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")

    def send_bytes(self, status, body, content_type=JSON, extra=None):
        self.started = True
        self.send_response(status)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, content_type=JSON, extra=None):
        self.send_bytes(status, dumps(obj), content_type, extra)

    def start_stream(self, content_type):
        """200 with a chunked body; returns write(bytes), b"" ends the body."""
        self.started = True
        self.send_response(200)
        self.common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

        def write(data):
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        return write

    def client_gone(self):
        """True once the client closed (or unexpectedly wrote to) a streaming connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        if readable:
            self.close_connection = True
        return bool(readable)

    def write_log(self, url, body):
        if Handler.log_file is None:
            return
        headers, pairs = {}, []
        for k, v in self.headers.items():
            pairs.append([k, v])
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        entry = {"method": self.command, "path": url.path, "query": url.query,
                 "headers": headers, "header_list": pairs,
                 "body": body.decode("utf-8", errors="replace")}
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:  # e.g. protobuf: keep it exactly too
            entry["body_base64"] = base64.b64encode(body).decode("ascii")
        line = json.dumps(entry, separators=(",", ":"))
        with Handler.log_lock:
            Handler.log_file.write(line + "\n")
            Handler.log_file.flush()

    # ---- dispatch -------------------------------------------------------

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def q(self, name, default=None):
        v = self.query.get(name)
        return v[-1] if v else default

    def dispatch(self):
        self.started = False
        try:
            body = self.read_body()
        except ValueError:
            self.send_error(400, "bad request body framing")
            return
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.write_log(url, body)
        if self.headers.get("Authorization") != "Bearer " + Handler.token:
            self.send_json(401, status_obj(401, "Unauthorized", "Unauthorized"))
            return
        try:
            self.route(url.path, body)
        except ApiError as e:
            if not self.started:
                self.send_json(e.code, e.status)
            else:
                self.close_connection = True
        except DISCONNECTS:
            raise
        except Exception as e:  # a bug here must still answer JSON
            traceback.print_exc()
            if not self.started:
                self.send_json(500, status_obj(500, "InternalError", "test server error: %r" % e))
            self.close_connection = True

    def route(self, path, body):
        m = self.command
        if (path.rstrip("/") in ("/api", "/apis", "/version", "/healthz", "/livez", "/readyz")
                or path.startswith("/openapi/")) and m != "GET":
            raise self.method_not_allowed()
        p = path.rstrip("/") or "/"
        if p == "/version":
            return self.send_json(200, VERSION)
        if p in ("/healthz", "/livez", "/readyz"):
            return self.send_bytes(200, b"ok", "text/plain; charset=utf-8")
        if p == "/openapi/v3":
            return self.send_json(200, openapi_v3_root())
        if p.startswith("/openapi/v3/api"):
            gv = p[len("/openapi/v3/"):].split("/")
            if gv[:1] == ["api"] and gv[1:] == ["v1"]:
                return self.send_json(200, openapi_v3_gv("", "v1"))
            if len(gv) == 3 and gv[0] == "apis" and gv[2] in GROUPS.get(gv[1], ()):
                return self.send_json(200, openapi_v3_gv(gv[1], gv[2]))
        if p == "/api":
            return self.discovery(["", ], {"kind": "APIVersions", "versions": ["v1"],
                                           "serverAddressByClientCIDRs": [{
                                               "clientCIDR": "0.0.0.0/0",
                                               "serverAddress": "127.0.0.1:%d" % self.server.server_address[1]}]})
        if p == "/apis":
            return self.discovery(GROUPS, {"kind": "APIGroupList", "apiVersion": "v1",
                                           "groups": [api_group(g) for g in GROUPS]})
        segs = [unquote(s) for s in path.split("/")[1:]]
        if segs and segs[-1] == "":
            segs.pop()
        if len(segs) >= 2 and segs[0] == "api" and segs[1] == "v1":
            group, version, rest = "", "v1", segs[2:]
        elif len(segs) >= 2 and segs[0] == "apis" and segs[1] in GROUPS:
            if len(segs) == 2:
                if m != "GET":
                    raise self.method_not_allowed()
                return self.send_json(200, dict({"kind": "APIGroup", "apiVersion": "v1"}, **api_group(segs[1])))
            if segs[2] not in GROUPS[segs[1]]:
                raise self.path_not_found()
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise self.path_not_found()
        if not rest:
            if m != "GET":
                raise self.method_not_allowed()
            return self.send_json(200, legacy_resource_list(group, version))
        if any(s == "" for s in rest):
            raise self.path_not_found()
        by = BY_GV[(group, version)]
        ns = name = sub = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in by and by[rest[2]].namespaced:
            if len(rest) > 5:
                raise self.path_not_found()
            ns, res = rest[1], by[rest[2]]
            name = rest[3] if len(rest) > 3 else None
            sub = rest[4] if len(rest) > 4 else None
        elif rest[0] in by:
            res = by[rest[0]]
            if res.namespaced and len(rest) > 1:
                raise self.path_not_found()
            if len(rest) > 3:
                raise self.path_not_found()
            name = rest[1] if len(rest) > 1 else None
            sub = rest[2] if len(rest) > 2 else None
        else:
            raise self.path_not_found()
        if not res.stored:
            return self.review(res, name, body)
        if sub is not None:
            return self.subresource(res, ns, name, sub, body)
        if name is None:
            return self.collection(res, ns, body)
        return self.item(res, ns, name, body)

    def path_not_found(self):
        return ApiError(404, "NotFound", "the server could not find the requested resource",
                        {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})

    def method_not_allowed(self):
        return ApiError(405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource")

    def discovery(self, groups, legacy):
        kind, ver = negotiate(self.headers.get("Accept"), allow_discovery=True)
        if kind == "discovery":
            return self.send_json(200, discovery_list(ver, groups), DISCOVERY_CT % ver, {"Vary": "Accept"})
        return self.send_json(200, legacy, JSON, {"Vary": "Accept"})

    def dry_run(self):
        values = self.query.get("dryRun", [])
        for v in values:
            if v != "All":
                raise bad_request("Invalid dryRun value %r: only All is supported" % v)
        return bool(values)

    def selectors(self):
        return (parse_label_selector(self.q("labelSelector", "")),
                parse_field_selector(self.q("fieldSelector", "")))

    def send_obj(self, status, res, obj):
        fmt, ver = negotiate(self.headers.get("Accept"), allow_table=res.cells is not None)
        if fmt == "table":
            return self.send_json(status, self.table(res, [obj], ver, meta(obj).get("resourceVersion")),
                                  TABLE_CT % ver)
        return self.send_json(status, obj)

    def table(self, res, objs, ver, rv):
        include = self.q("includeObject", "Metadata")
        rows = []
        for o in objs:
            row = {"cells": res.cells(o)}
            if include == "Object":
                row["object"] = o
            elif include != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/" + ver,
                                 "metadata": o.get("metadata")}
            rows.append(row)
        return {"kind": "Table", "apiVersion": "meta.k8s.io/" + ver,
                "metadata": {"resourceVersion": rv}, "columnDefinitions": res.columns, "rows": rows}

    def body_object(self, res, body):
        obj = request_object(self.headers.get("Content-Type"), body)
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        if obj.get("kind") not in (None, "", res.kind):
            raise bad_request("the kind in the data (%s) does not match the expected kind (%s)"
                              % (obj.get("kind"), res.kind))
        if obj.get("apiVersion") not in (None, "", res.api_version):
            raise bad_request("the API version in the data (%s) does not match the expected API "
                              "version (%s)" % (obj.get("apiVersion"), res.api_version))
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise bad_request("metadata must be an object")
        return obj

    def collection(self, res, ns, body):
        m = self.command
        if m == "GET":
            lsel, fsel = self.selectors()
            if self.q("watch", "").lower() in ("1", "true"):
                return self.watch(res, ns, lsel, fsel)
            items, rv = STORE.list(res, ns, lsel, fsel)
            fmt, ver = negotiate(self.headers.get("Accept"), allow_table=res.cells is not None)
            if fmt == "table":
                return self.send_json(200, self.table(res, items, ver, rv), TABLE_CT % ver)
            return self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                        "metadata": {"resourceVersion": rv}, "items": items})
        if m == "POST" and (ns is not None or not res.namespaced):
            obj = self.body_object(res, body)
            md = obj["metadata"]
            if res.namespaced:
                if md.get("namespace") not in (None, "", ns):
                    raise bad_request("the namespace of the provided object does not match the "
                                      "namespace sent on the request")
                md["namespace"] = ns
            else:
                md.pop("namespace", None)
            name = md.get("name") or ""
            if not name and not md.get("generateName"):
                raise invalid(res, "", "metadata.name: Required value: name or generateName is required")
            check = name or md["generateName"] + "x"
            if len(check) > 253 or not NAME_RE.match(check):
                raise invalid(res, name, 'metadata.name: Invalid value: "%s": a lowercase RFC 1123 '
                                         "subdomain must consist of lower case alphanumeric "
                                         "characters, '-' or '.'" % name)
            created = STORE.create(res, ns, obj, self.dry_run())
            return self.send_obj(201, res, created)
        if m == "DELETE" and ns is not None:
            lsel, fsel = self.selectors()
            items, rv = STORE.delete_collection(res, ns, lsel, fsel, self.dry_run())
            return self.send_json(200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                        "metadata": {"resourceVersion": rv}, "items": items})
        raise self.method_not_allowed()

    def item(self, res, ns, name, body):
        m = self.command
        if m == "GET":
            return self.send_obj(200, res, STORE.get(res, ns, name))
        if m == "PUT":
            obj = self.body_object(res, body)
            return self.send_obj(200, res, STORE.update(res, ns, name, lambda cur: obj, self.dry_run()))
        if m == "PATCH":
            ct = self.headers.get("Content-Type")
            return self.send_obj(200, res, STORE.update(
                res, ns, name, lambda cur: self.patched(ct, cur, body), self.dry_run()))
        if m == "DELETE":
            opts = request_object(self.headers.get("Content-Type"), body) if body.strip() else {}
            if not isinstance(opts, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            dry = self.dry_run() or opts.get("dryRun") == ["All"]
            gone = STORE.delete(res, ns, name, dry, opts.get("preconditions"))
            if res.plural == "pods":
                return self.send_obj(200, res, gone)
            return self.send_json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                        "status": "Success",
                                        "details": dict(details_for(res, name), uid=meta(gone).get("uid"))})
        raise self.method_not_allowed()

    def patched(self, content_type, cur, body):
        new = apply_patch(content_type, cur, body)
        # A patch may not move resourceVersion backwards by accident: drop it
        # unless the patch itself set one (then it is a precondition).
        patch_md = (parse_json(body) or {}).get("metadata") or {}
        if isinstance(new.get("metadata"), dict) and "resourceVersion" not in patch_md:
            new["metadata"].pop("resourceVersion", None)
        return new

    def subresource(self, res, ns, name, sub, body):
        m = self.command
        if res.plural == "pods" and sub == "log":
            if m != "GET":
                raise self.method_not_allowed()
            return self.pod_log(ns, name)
        if res.plural == "pods" and sub in ("exec", "attach", "portforward"):
            if m not in ("GET", "POST"):
                raise self.method_not_allowed()
            return self.streaming(res, ns, name, sub)
        if res.plural == "deployments" and sub == "scale":
            dry = self.dry_run() if m in ("PUT", "PATCH") else False
            if m == "GET":
                return self.send_json(200, scale_of(STORE.get(res, ns, name)))

            def set_replicas(dep):
                cur = scale_of(dep)
                if m == "PUT":
                    want = parse_json(body)
                    if not isinstance(want, dict):
                        raise bad_request("the request body must be a JSON object")
                else:
                    want = apply_patch(self.headers.get("Content-Type"), cur, body)
                want_rv = (want.get("metadata") or {}).get("resourceVersion")
                if m == "PUT" and want_rv:
                    dep["metadata"]["resourceVersion"] = want_rv  # precondition
                replicas = (want.get("spec") or {}).get("replicas", 0 if m == "PUT" else cur["spec"]["replicas"])
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    raise ApiError(422, "Invalid", 'Scale.autoscaling "%s" is invalid: spec.replicas: '
                                                   "Invalid value: must be greater than or equal to 0" % name)
                dep["spec"]["replicas"] = replicas
                if not (m == "PUT" and want_rv):
                    dep["metadata"].pop("resourceVersion", None)
                return dep

            if m in ("PUT", "PATCH"):
                return self.send_json(200, scale_of(STORE.update(res, ns, name, set_replicas, dry)))
            raise self.method_not_allowed()
        raise self.path_not_found()

    def review(self, res, name, body):
        if self.command != "POST" or name is not None:
            raise self.method_not_allowed()
        obj = self.body_object(res, body)
        out = {"kind": res.kind, "apiVersion": res.api_version,
               "metadata": {"creationTimestamp": None}}
        if res.plural == "selfsubjectaccessreviews":
            out["spec"] = obj.get("spec") or {}
            out["status"] = {"allowed": True,
                             "reason": "the Gatehouse kube test server allows every request"}
        else:
            user = {"username": self.headers.get("Impersonate-User") or DEFAULT_USER,
                    "groups": self.headers.get_all("Impersonate-Group")
                    or ["system:authenticated"]}
            if self.headers.get("Impersonate-Uid"):
                user["uid"] = self.headers.get("Impersonate-Uid")
            extra = {}
            for k, v in self.headers.items():
                if k.lower().startswith("impersonate-extra-"):
                    extra.setdefault(unquote(k[len("impersonate-extra-"):]).lower(), []).append(v)
            if extra:
                user["extra"] = extra
            out["status"] = {"userInfo": user}
        return self.send_json(201, out)

    # ---- streams ------------------------------------------------------------

    def watch(self, res, ns, lsel, fsel):
        fmt, ver = negotiate(self.headers.get("Accept"), allow_table=res.cells is not None)
        timeout = self.q("timeoutSeconds")
        try:
            deadline = time.monotonic() + float(timeout) if timeout else None
        except ValueError:
            raise bad_request("timeoutSeconds must be a number")
        rv_param = self.q("resourceVersion", "")
        initial_end = self.q("sendInitialEvents", "").lower() == "true"
        expired = False
        with STORE.cond:
            if rv_param in ("", "0") or initial_end:
                initial, last = STORE._matching(res, ns, lsel, fsel), STORE.rv
            else:
                try:
                    last = int(rv_param)
                except ValueError:
                    raise bad_request("resourceVersion %r is not a number" % rv_param)
                initial, expired = [], last < STORE.floor

        def event(etype, obj):
            if fmt == "table" and etype in ("ADDED", "MODIFIED", "DELETED"):
                obj = self.table(res, [obj], ver, meta(obj).get("resourceVersion"))
            return dumps({"type": etype, "object": obj}) + b"\n"

        def gone_event():
            return dumps({"type": "ERROR", "object": status_obj(
                410, "Expired", "too old resource version: %s (%d)" % (rv_param or last, STORE.floor))}) + b"\n"

        write = self.start_stream(JSON)
        try:
            if expired:
                write(gone_event())
                write(b"")
                return
            for o in initial:
                write(event("ADDED", o))
            if initial_end:
                write(dumps({"type": "BOOKMARK", "object": {
                    "kind": res.kind, "apiVersion": res.api_version,
                    "metadata": {"resourceVersion": str(last),
                                 "annotations": {"k8s.io/initial-events-end": "true"}}}}) + b"\n")
            while True:
                with STORE.cond:
                    pending = self.pending(last)
                    if pending is None:
                        expired = True
                    elif not pending:
                        wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                        if wait > 0:
                            STORE.cond.wait(wait)
                            pending = self.pending(last)
                            expired = pending is None
                    if pending:
                        last = pending[-1].rv
                if expired:
                    write(gone_event())
                    break
                for c in pending or ():
                    if c.plural == res.plural and (ns is None or c.ns == ns) and \
                            labels_match(c.obj, lsel) and fields_match(c.obj, fsel):
                        write(event(c.type, c.obj))
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not pending and self.client_gone():
                    return
            write(b"")
        except DISCONNECTS + (ssl.SSLError, OSError):
            self.close_connection = True

    def pending(self, last):
        """Changes newer than last (oldest first); None if some were evicted. Hold STORE.cond."""
        if last < STORE.floor:
            return None
        out = []
        for c in reversed(STORE.history):
            if c.rv <= last:
                break
            out.append(c)
        out.reverse()
        return out

    def pod_log(self, ns, name):
        pod = STORE.get(RES["pods"], ns, name)
        names = [c.get("name") for c in pod["spec"].get("containers") or []]
        container = self.q("container")
        if container and container not in names:
            raise bad_request("container %s is not valid for pod %s" % (container, name))
        if not container and len(names) > 1:
            raise bad_request("a container name must be specified for pod %s, choose one of: [%s]"
                              % (name, " ".join(names)))
        lines = [LOG_LINE % i for i in range(1, LOG_EXISTING + 1)]
        try:
            tail = int(self.q("tailLines", "-1"))
            limit = int(self.q("limitBytes", "0"))
        except ValueError:
            raise bad_request("tailLines and limitBytes must be integers")
        if tail >= 0:
            lines = lines[len(lines) - tail:] if tail else []
        stamps = self.q("timestamps", "").lower() == "true"

        def fmt(text):
            prefix = (now().strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z ") if stamps else ""
            return (prefix + text + "\n").encode("utf-8")

        if self.q("follow", "").lower() != "true":
            out = b"".join(fmt(x) for x in lines)
            return self.send_bytes(200, out[:limit] if limit > 0 else out, "text/plain")
        write = self.start_stream("text/plain")
        sent = 0
        try:
            n = LOG_EXISTING
            end = time.monotonic() + FOLLOW_SECONDS
            pending = [fmt(x) for x in lines]
            while True:
                for chunk in pending:
                    if limit > 0 and sent + len(chunk) > limit:
                        chunk = chunk[:limit - sent]
                    if chunk:
                        write(chunk)
                        sent += len(chunk)
                if (limit > 0 and sent >= limit) or time.monotonic() >= end:
                    break
                time.sleep(FOLLOW_INTERVAL)
                if self.client_gone():
                    return
                n += 1
                pending = [fmt(LOG_LINE % n)]
            write(b"")
        except DISCONNECTS + (ssl.SSLError, OSError):
            self.close_connection = True


    # ---- exec, attach, port-forward ---------------------------------------------

    def streaming(self, res, ns, name, sub):
        """Validate, negotiate the upgrade (SPDY/3.1 or WebSocket), answer 101, then serve."""
        pod = STORE.get(res, ns, name)
        path = urlsplit(self.path).path
        tokens = {t.strip().lower() for v in self.headers.get_all("Connection") or [] for t in v.split(",")}
        upgrade = (self.headers.get("Upgrade") or "").strip()
        if "upgrade" not in tokens or not upgrade:
            raise bad_request("Upgrade request required")
        flags = {k: (self.q(k) or "").lower() in ("1", "true") for k in ("stdin", "stdout", "stderr", "tty")}
        info = {"path": path, "command": None, "protocol": None, "pod": name, "namespace": ns}
        ports = []
        if sub == "portforward":
            for v in self.query.get("ports", []):
                for p in v.split(","):
                    try:
                        ports.append(int(p))
                    except ValueError:
                        raise bad_request('invalid port "%s"' % p)
        else:
            containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
            container = self.q("container")
            if not container:
                if len(containers) != 1:
                    raise bad_request("a container name must be specified for pod %s, choose one of: %s"
                                      % (name, go_list(containers)))
                container = containers[0]
            elif container not in containers:
                raise bad_request("container %s is not valid for pod %s" % (container, name))
            if sub == "exec":
                info["command"] = self.query.get("command") or []
                if not info["command"]:
                    raise bad_request("you must specify at least 1 command")
            else:
                info["command"] = ["cat"]        # attach: the pod's "main process"
            if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
                raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
            info["container"] = container
        if upgrade.lower() == "websocket":
            key = self.headers.get("Sec-WebSocket-Key")
            if self.headers.get("Sec-WebSocket-Version") != "13" or not key:
                raise bad_request("a WebSocket upgrade needs Sec-WebSocket-Version 13 and a Sec-WebSocket-Key")
            offered = [p.strip() for v in self.headers.get_all("Sec-WebSocket-Protocol") or []
                       for p in v.split(",") if p.strip()]
            supported = WS_PF_PROTOCOLS if sub == "portforward" else WS_EXEC_PROTOCOLS
            chosen = next((p for p in supported if p in offered), None)
            if chosen is None:
                if offered:
                    raise bad_request("requested protocol(s) are not supported: %s; supports %s"
                                      % (go_list(offered), go_list(supported)))
                chosen = ""                       # no subprotocol: plain channel.k8s.io
            if sub == "portforward" and chosen != PF_TUNNEL_PROTOCOL and not ports:
                raise bad_request('query parameter "port" is required')
            answer = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                      ("Sec-WebSocket-Accept", ws_accept(key))]
            if chosen:
                answer.append(("Sec-WebSocket-Protocol", chosen))
            info["upgrade"] = "websocket"
        elif upgrade.lower().startswith("spdy/"):
            offered = [p.strip() for v in self.headers.get_all("X-Stream-Protocol-Version") or []
                       for p in v.split(",") if p.strip()]
            supported = (PF_PROTOCOL,) if sub == "portforward" else SPDY_EXEC_PROTOCOLS
            if not offered:
                raise bad_request("unable to upgrade: X-Stream-Protocol-Version is required")
            chosen = next((p for p in offered if p in supported), None)   # the client's order
            if chosen is None:
                msg = ("unable to upgrade: unable to negotiate protocol: client supports %s, server "
                       "accepts %s" % (go_list(offered), go_list(supported)))
                return self.send_json(403, status_obj(403, "Forbidden", msg),
                                      extra={"X-Accepted-Stream-Protocol-Versions": ", ".join(supported)})
            answer = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                      ("X-Stream-Protocol-Version", chosen)]
            info["upgrade"] = "SPDY/3.1"
        else:
            raise bad_request("unsupported upgrade %r: only SPDY/3.1 and websocket" % upgrade)
        info["protocol"] = chosen
        self.started = True
        self.close_connection = True
        self.send_response(101)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        for k, v in answer:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()
        self.serve_upgraded(sub, info, ns, name, flags, ports)

    def serve_upgraded(self, sub, info, ns, name, flags, ports):
        leftover = buffered_leftover(self.rfile, self.connection)
        reactor = Reactor()
        conn = ClientConn(reactor, self.connection)
        ws = WebSocket(conn, None, None) if info["upgrade"] == "websocket" else None
        session = pf = None
        try:
            if sub == "portforward":
                if ws is None or info["protocol"] == PF_TUNNEL_PROTOCOL:
                    if ws is None:
                        pf = SpdyPortForward(conn, info)
                        conn.start(leftover, pf.spdy.feed, pf.end)
                    else:     # SPDY frames as a byte stream carried in binary messages
                        pf = SpdyPortForward(conn, info, write=lambda b: ws.send(WebSocket.BINARY, b),
                                             close=lambda: ws.close(1000))
                        ws.on_message = lambda op, payload: pf.spdy.feed(payload)
                        ws.on_end = pf.end
                        ws.start(leftover)
                else:
                    pf = WsPortForward(ws, info, ports)
                    ws.on_message, ws.on_end = pf.message, pf.end
                    ws.start(leftover)
                    pf.open()
            else:
                tty = flags["tty"]
                env = dict(os.environ, HOSTNAME=name)
                session = ExecSession(reactor, info, info["command"], pod_dir(ns, name), env,
                                      flags["stdin"], flags["stdout"], flags["stderr"] and not tty, tty)
                if ws is not None:
                    t = WsExec(ws, session, info["protocol"])
                    ws.on_message, ws.on_end = t.message, t.end
                    ws.start(leftover)
                    session.ready()
                else:
                    expected = {"error"}
                    expected.update(k for k in ("stdin", "stdout") if flags[k])
                    if flags["stderr"] and not tty:
                        expected.add("stderr")
                    if tty and info["protocol"] in ("v3.channel.k8s.io", "v4.channel.k8s.io"):
                        expected.add("resize")
                    t = SpdyExec(conn, session, info["protocol"], expected)
                    conn.start(leftover, t.spdy.feed, t.eof)
            reactor.run()
        finally:
            if session is not None and not session.done:
                session.gone()
            if pf is not None:
                close_targets(pf.fwds)


# ---- exec, attach, port-forward: upgraded connections ------------------------------
#
# After the 101 answer everything runs in the connection's own thread on one
# selector loop (Reactor): the client socket (plain or TLS, non-blocking), the
# process's pipes or pty and port-forward's target sockets. Only that thread
# touches the TLS object, so reads and writes never race inside OpenSSL.

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HIGH_WATER = 1 << 20          # stop reading a source while this much waits for the client
STDIN_HIGH = 8 << 20          # stop reading the client while this much waits for a process
MAX_WS_MESSAGE = 64 << 20
LINGER = 2.0                  # how long a finished connection waits for the client's EOF
STREAM_CREATION_TIMEOUT = 30.0
FIRST_RESIZE_WAIT = 0.5       # a tty session waits this long for the client's first size
WS_EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                     "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io",
                     "base64.channel.k8s.io")
SPDY_EXEC_PROTOCOLS = ("v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io",
                       "channel.k8s.io")
PF_PROTOCOL = "portforward.k8s.io"
PF_TUNNEL_PROTOCOL = "SPDY/3.1+" + PF_PROTOCOL
WS_PF_PROTOCOLS = (PF_TUNNEL_PROTOCOL, "v4.channel.k8s.io", "channel.k8s.io")
STREAM_TYPES = ("error", "stdin", "stdout", "stderr", "resize")
# The child of a tty session makes the pty its controlling terminal, then runs the command.
CTTY_SHIM = ("import fcntl, os, sys, termios\n"
             "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
             "os.execvp(sys.argv[1], sys.argv[1:])\n")

# SPDY/3 name/value header blocks are zlib streams primed with this dictionary
# (SPDY Protocol Draft 3, section 2.6.10.1): length-prefixed header names and
# common values, then a run of status codes, reason phrases, dates and types.
_SPDY_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base "
    "content-encoding content-language content-length content-location content-md5 "
    "content-range content-type date etag expect expires from host if-match if-modified-since "
    "if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer "
    "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK"] + "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_SPDY_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICT = b"".join(struct.pack(">I", len(w)) + w.encode("ascii") for w in _SPDY_DICT_WORDS) \
    + _SPDY_DICT_TAIL.encode("ascii")
assert len(SPDY_DICT) == 1423 and zlib.adler32(SPDY_DICT) == 0xE3C6A7C2

SPDY_SYN_STREAM, SPDY_SYN_REPLY, SPDY_RST_STREAM, SPDY_SETTINGS = 1, 2, 3, 4
SPDY_PING, SPDY_GOAWAY, SPDY_HEADERS, SPDY_WINDOW_UPDATE = 6, 7, 8, 9
SPDY_FIN = 0x01
SPDY_PROTOCOL_ERROR, SPDY_INVALID_STREAM, SPDY_REFUSED_STREAM, SPDY_CANCEL = 1, 2, 3, 5
SPDY_WINDOW_STEP = 32768      # acknowledge received data in steps of this size

POD_ROOT = None               # temporary directory holding one directory per pod
POD_ROOT_LOCK = threading.Lock()
LIVE = set()                  # running exec/attach processes, killed at exit
LIVE_LOCK = threading.Lock()


def log_event(entry):
    if Handler.log_file is None:
        return
    line = json.dumps(entry, separators=(",", ":"))
    with Handler.log_lock:
        Handler.log_file.write(line + "\n")
        Handler.log_file.flush()


def log_forward_end(info, fwd):
    log_event({"event": "portforward_end", "path": info["path"], "port": fwd.port,
               "request_id": fwd.rid, "bytes_to_pod": fwd.sent, "bytes_from_pod": fwd.received,
               "error": fwd.error, "protocol": info["protocol"], "upgrade": info["upgrade"],
               "pod": info["pod"], "namespace": info["namespace"]})


def pod_dir(ns, name):
    """The pod's filesystem: POD_ROOT/NS/NAME with hello.txt and tmp/, made on first use."""
    d = os.path.join(POD_ROOT, ns, name)
    with POD_ROOT_LOCK:
        if not os.path.isdir(d):
            os.makedirs(os.path.join(d, "tmp"))
            with open(os.path.join(d, "hello.txt"), "w") as f:
                f.write("hello from %s\n" % name)
    return d


def in_pod(arg):
    """An absolute path argument names a path inside the pod directory (made relative),
    except under /dev and /proc, which a container shares with its host anyway."""
    if not arg.startswith("/") or arg.startswith(("/dev/", "/proc/")) or arg in ("/dev", "/proc"):
        return arg
    return arg.lstrip("/") or "."


def go_list(items):
    return "[" + " ".join(items) + "]"


def exit_status(argv, code):
    """The Status kubelet writes on the error stream when the command ends (v4/v5)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": "command terminated with non-zero exit code: error executing command "
                       "%s, exit code %d" % (go_list(argv), code),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def internal_status(message):
    return {"metadata": {}, "status": "Failure", "message": "Internal error occurred: " + message,
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


class Reactor:
    """A selector loop with timers; every callback runs in the loop's thread."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.cbs = {}        # fd -> [on_read, on_write]
        self.timers = []     # heap of [when, seq, fn]
        self.seq = 0
        self.stopped = False

    def want(self, fd, kind, cb):
        """Call cb when fd is readable (kind "r") or writable ("w"); cb None stops that."""
        entry = self.cbs.get(fd)
        old = 0 if entry is None else ((selectors.EVENT_READ if entry[0] else 0)
                                       | (selectors.EVENT_WRITE if entry[1] else 0))
        if entry is None:
            if cb is None:
                return
            entry = self.cbs[fd] = [None, None]
        entry[0 if kind == "r" else 1] = cb
        mask = (selectors.EVENT_READ if entry[0] else 0) | (selectors.EVENT_WRITE if entry[1] else 0)
        if mask == old:
            return
        if not old:
            self.sel.register(fd, mask)
        elif not mask:
            self.sel.unregister(fd)
            del self.cbs[fd]
        else:
            self.sel.modify(fd, mask)

    def forget(self, fd):
        if self.cbs.pop(fd, None) is not None:
            self.sel.unregister(fd)

    def later(self, delay, fn):
        self.seq += 1
        timer = [time.monotonic() + delay, self.seq, fn]
        heapq.heappush(self.timers, timer)
        return timer

    @staticmethod
    def cancel(timer):
        if timer is not None:
            timer[2] = None

    def stop(self):
        self.stopped = True

    def run(self):
        try:
            while not self.stopped:
                now = time.monotonic()
                while self.timers and self.timers[0][0] <= now and not self.stopped:
                    fn = heapq.heappop(self.timers)[2]
                    if fn is not None:
                        fn()
                if self.stopped:
                    break
                timeout = max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None
                if timeout is None and not self.cbs:
                    break
                for key, mask in self.sel.select(timeout):
                    entry = self.cbs.get(key.fd)
                    if entry and mask & selectors.EVENT_READ and entry[0]:
                        entry[0]()
                    entry = self.cbs.get(key.fd)
                    if entry and mask & selectors.EVENT_WRITE and entry[1]:
                        entry[1]()
                    if self.stopped:
                        break
        finally:
            self.sel.close()


class ClientConn:
    """The upgraded client connection: buffered non-blocking writes, pausable reads."""

    def __init__(self, reactor, sock):
        self.r, self.sock, self.fd = reactor, sock, sock.fileno()
        self.out = bytearray()
        self.chunk = None            # the write in progress (TLS retries need the same bytes)
        self.reading = self.closing = self.shut = self.dead = False
        self.on_data = self.on_eof = None
        self.drained = []

    def start(self, leftover, on_data, on_eof):
        self.on_data, self.on_eof = on_data, on_eof
        if leftover:
            on_data(leftover)
        self.resume()

    def pause(self):
        if self.reading:
            self.reading = False
            self.r.want(self.fd, "r", None)

    def resume(self):
        if not self.reading and not self.dead:
            self.reading = True
            self.r.want(self.fd, "r", self.readable)
            self.r.later(0, self.readable)   # TLS may hold decrypted bytes already

    def readable(self):
        for _ in range(8):
            if not self.reading or self.dead:
                return
            try:
                data = self.sock.recv(262144)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except OSError:
                data = b""
            if not data:
                self.lost()
                return
            if not self.closing:
                self.on_data(data)
        self.r.later(0, self.readable)

    def send(self, data):
        if data and not self.dead and not self.shut:
            self.out += data
            self.flush()

    def backlog(self):
        return len(self.out)

    def when_drained(self, cb):
        self.drained.append(cb)

    def flush(self):
        while self.out and not self.dead:
            if self.chunk is None:
                self.chunk = bytes(self.out[:262144])
            try:
                n = self.sock.send(self.chunk)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self.r.want(self.fd, "w", self.flush)
                return
            except OSError:
                self.lost()
                return
            del self.out[:n]
            self.chunk = self.chunk[n:] or None
        if self.dead:
            return
        self.r.want(self.fd, "w", None)
        if self.drained:
            cbs, self.drained = self.drained, []
            for cb in cbs:
                cb()
        if self.closing and not self.out and not self.shut:
            self.half_close()

    def close(self):
        """Flush, then half-close and wait (bounded) for the client's EOF before stopping."""
        if not self.closing:
            self.closing = True
            self.flush()
            if self.dead:
                self.r.stop()

    def half_close(self):
        self.shut = True
        try:
            self.sock.shutdown(socket.SHUT_WR)   # on TLS this drops the session: no close_notify
        except OSError:
            pass
        self.on_eof = self.r.stop
        self.resume()
        self.r.later(LINGER, self.r.stop)

    def lost(self):
        if self.dead:
            return
        self.dead = True
        self.reading = False
        self.out.clear()
        self.chunk = None
        self.r.forget(self.fd)
        self.on_eof()
        if self.closing:
            self.r.stop()


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode("ascii")


assert ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3


def ws_unmask(data, key):
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


class WebSocket:
    """RFC 6455, server side: client frames must be masked, ours are not.

    on_message(opcode, payload) gets whole messages (fragments joined);
    on_end(why) is called once if the client ends first ("close" or "eof").
    Pings are answered with pongs carrying the same payload.
    """
    TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10

    def __init__(self, conn, on_message, on_end):
        self.conn, self.on_message, self.on_end = conn, on_message, on_end
        self.buf = bytearray()
        self.frag_op, self.frag = None, bytearray()
        self.close_sent = self.close_received = self.ended = False

    def start(self, leftover):
        self.conn.start(leftover, self.feed, self.eof)

    def eof(self):
        self.end("eof")

    def end(self, why):
        if not self.ended:
            self.ended = True
            self.on_end(why)

    def feed(self, data):
        self.buf += data
        while not self.close_received:
            b = self.buf
            if len(b) < 2:
                return
            fin, rsv, op, masked, n = b[0] & 0x80, b[0] & 0x70, b[0] & 0x0F, b[1] & 0x80, b[1] & 0x7F
            i = 2
            if n == 126:
                if len(b) < 4:
                    return
                n, i = struct.unpack(">H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, i = struct.unpack(">Q", b[2:10])[0], 10
            if not masked or rsv or n > MAX_WS_MESSAGE:
                return self.fail(1009 if n > MAX_WS_MESSAGE else 1002)
            if len(b) < i + 4 + n:
                return
            key = bytes(b[i:i + 4])
            payload = ws_unmask(bytes(b[i + 4:i + 4 + n]), key)
            del b[:i + 4 + n]
            if op >= 8:
                if not fin or n > 125:
                    return self.fail(1002)
                self.control(op, payload)
            elif op in (self.TEXT, self.BINARY):
                if self.frag_op is not None:
                    return self.fail(1002)
                if fin:
                    self.on_message(op, payload)
                else:
                    self.frag_op, self.frag = op, bytearray(payload)
            elif op == 0:
                if self.frag_op is None or len(self.frag) + n > MAX_WS_MESSAGE:
                    return self.fail(1002)
                self.frag += payload
                if fin:
                    op, msg = self.frag_op, bytes(self.frag)
                    self.frag_op, self.frag = None, bytearray()
                    self.on_message(op, msg)
            else:
                return self.fail(1002)

    def control(self, op, payload):
        if op == self.PING:
            self.send(self.PONG, payload)
        elif op == self.CLOSE:
            self.close_received = True
            if not self.close_sent:
                code = payload[:2] if len(payload) >= 2 else struct.pack(">H", 1000)
                self.send(self.CLOSE, code)
                self.close_sent = True
                self.end("close")
            self.conn.close()

    def send(self, op, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | op, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | op, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | op, 127, n)
        self.conn.send(head + payload)

    def close(self, code=1000, reason=b""):
        if self.close_sent:
            return
        self.close_sent = True
        self.send(self.CLOSE, struct.pack(">H", code) + reason)
        if self.close_received or self.conn.dead:
            self.conn.close()
        else:
            self.conn.r.later(LINGER, self.conn.close)

    def fail(self, code):
        self.close(code)
        self.close_received = True
        self.end("error")
        self.conn.close()


class Spdy:
    """SPDY/3.1 framing, server side, as Kubernetes uses it (streams opened by the client).

    One zlib context per direction for the whole connection: every header
    block received is inflated (even ones whose content is ignored) so the
    shared state stays in step. Flow control is acknowledged, never enforced:
    spdystream (kubectl's side) neither sends nor waits for WINDOW_UPDATE.
    """

    def __init__(self, write, on_syn, on_data, on_rst, on_goaway):
        self.write = write
        self.on_syn, self.on_data, self.on_rst, self.on_goaway = on_syn, on_data, on_rst, on_goaway
        self.inflate = zlib.decompressobj(zdict=SPDY_DICT)
        self.deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, SPDY_DICT)
        self.buf = bytearray()
        self.last_id = 0
        self.fin_sent, self.fin_received = set(), set()
        self.unacked = collections.Counter()
        self.broken = False

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 8 and not self.broken:
            w0, w1 = struct.unpack(">II", self.buf[:8])
            flags, length = w1 >> 24, w1 & 0xFFFFFF
            if len(self.buf) < 8 + length:
                return
            payload = bytes(self.buf[8:8 + length])
            del self.buf[:8 + length]
            if w0 & 0x80000000:
                if (w0 >> 16) & 0x7FFF != 3:
                    self.protocol_error()
                    return
                self.control(w0 & 0xFFFF, flags, payload)
            else:
                self.data_frame(w0 & 0x7FFFFFFF, flags, payload)

    def headers(self, block):
        raw = self.inflate.decompress(block)
        out, i = {}, 4
        (count,) = struct.unpack(">I", raw[:4])
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[i:i + 4])
            name = raw[i + 4:i + 4 + n].decode("latin-1").lower()
            i += 4 + n
            (n,) = struct.unpack(">I", raw[i:i + 4])
            values = raw[i + 4:i + 4 + n].decode("latin-1").split("\0")
            i += 4 + n
            out.setdefault(name, []).extend(values)
        return out

    def header_block(self, headers):
        raw = struct.pack(">I", len(headers))
        for k, v in headers.items():
            k, v = k.lower().encode("latin-1"), v.encode("latin-1")
            raw += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def control(self, ftype, flags, p):
        try:
            if ftype == SPDY_SYN_STREAM:
                sid = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
                headers = self.headers(p[10:])
                if sid % 2 == 0 or sid <= self.last_id:
                    self.rst(sid, SPDY_PROTOCOL_ERROR)
                    return
                self.last_id = sid
                if flags & SPDY_FIN:
                    self.fin_received.add(sid)
                self.on_syn(sid, headers, bool(flags & SPDY_FIN))
            elif ftype in (SPDY_SYN_REPLY, SPDY_HEADERS):
                self.headers(p[4:])   # nothing to do with them, but the zlib state must follow
            elif ftype == SPDY_RST_STREAM:
                sid, status = struct.unpack(">II", p[:8])
                self.on_rst(sid & 0x7FFFFFFF, status)
            elif ftype == SPDY_PING:
                (pid,) = struct.unpack(">I", p[:4])
                if pid % 2 == 1:      # the client's ping (ours would be even): echo it
                    self.control_frame(SPDY_PING, 0, p[:4])
            elif ftype == SPDY_GOAWAY:
                self.on_goaway()
            # SETTINGS, WINDOW_UPDATE and unknown types: nothing to do.
        except (struct.error, zlib.error, UnicodeDecodeError):
            self.protocol_error()

    def data_frame(self, sid, flags, data):
        fin = bool(flags & SPDY_FIN)
        if fin:
            self.fin_received.add(sid)
        if data:
            self.unacked[sid] += len(data)
            self.unacked[0] += len(data)
            for k in (sid, 0):
                if self.unacked[k] >= SPDY_WINDOW_STEP and (k == 0 or not fin):
                    self.control_frame(SPDY_WINDOW_UPDATE, 0, struct.pack(">II", k, self.unacked[k]))
                    self.unacked[k] = 0
        self.on_data(sid, data, fin)

    def protocol_error(self):
        self.broken = True
        self.goaway(SPDY_PROTOCOL_ERROR)
        self.on_goaway()

    def control_frame(self, ftype, flags, payload):
        self.write(struct.pack(">HHI", 0x8000 | 3, ftype, (flags << 24) | len(payload)) + payload)

    def reply(self, sid):
        self.control_frame(SPDY_SYN_REPLY, 0, struct.pack(">I", sid) + self.header_block({}))

    def data(self, sid, data, fin=False):
        if sid is None or sid in self.fin_sent:
            return
        view = memoryview(data)
        while True:
            part, view = view[:65536], view[65536:]
            last = not len(view)
            flags = SPDY_FIN if fin and last else 0
            self.write(struct.pack(">II", sid, (flags << 24) | len(part)) + bytes(part))
            if last:
                break
        if fin:
            self.fin_sent.add(sid)

    def finish(self, sid):
        self.data(sid, b"", True)

    def rst(self, sid, status):
        self.fin_sent.add(sid)
        self.control_frame(SPDY_RST_STREAM, 0, struct.pack(">II", sid, status))

    def goaway(self, status=0):
        self.control_frame(SPDY_GOAWAY, 0, struct.pack(">II", self.last_id, status))


class ExecSession:
    """One exec or attach: a real process in the pod directory, wired to a transport.

    The transport (WsExec or SpdyExec) calls stdin(), stdin_eof(), resize(),
    ready() and gone(); the session calls transport.write(channel, data),
    transport.backlog(), transport.when_drained(cb), transport.pause_input(flag)
    and, once, transport.finish(status).
    """

    def __init__(self, reactor, info, argv, cwd, env, stdin, stdout, stderr, tty):
        self.r, self.info, self.argv, self.cwd, self.env = reactor, info, argv, cwd, env
        self.want_stdin, self.want_stdout, self.want_stderr, self.tty = stdin, stdout, stderr, tty
        self.transport = None
        self.proc = None
        self.outputs = {}            # fd -> channel
        self.files = {}              # fd -> the Popen file object owning it (None: pty master)
        self.paused = set()
        self.in_fd = None
        self.in_buf = bytearray()
        self.in_eof = self.in_closed = self.input_paused = False
        self.size = None
        self.resize_buf = ""
        self.started = self.done = False
        self.exited_at = None
        self.start_timer = self.poll_timer = None

    # -- from the transport --

    def ready(self):
        if self.started or self.done:
            return
        if self.tty and self.size is None:
            self.start_timer = self.r.later(FIRST_RESIZE_WAIT, self.start)
        else:
            self.start()

    def stdin(self, data):
        if self.done or self.in_eof or self.in_closed:
            return
        self.in_buf += data
        self.pump()

    def stdin_eof(self):
        if not self.in_eof:
            self.in_eof = True
            self.pump()

    def resize(self, data):
        self.resize_buf += data.decode("utf-8", "replace")
        dec = json.JSONDecoder()
        while True:
            text = self.resize_buf.lstrip()
            if not text:
                self.resize_buf = ""
                return
            try:
                obj, end = dec.raw_decode(text)
            except ValueError:
                self.resize_buf = text
                return
            self.resize_buf = text[end:]
            if isinstance(obj, dict):
                try:
                    self.set_size(int(obj.get("Width") or 0), int(obj.get("Height") or 0))
                except (TypeError, ValueError):
                    pass

    def gone(self):
        """The client went away first: kill the process and stop."""
        if self.done:
            return
        if self.proc is not None:
            kill_group(self.proc)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.end(self.exit_code(), client_gone=True)
        self.r.stop()

    # -- the process --

    def set_size(self, width, height):
        if width <= 0 or height <= 0:
            return
        self.size = (width, height)
        if self.tty and self.in_fd is not None:
            try:
                fcntl.ioctl(self.in_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
            except OSError:
                pass
        if self.start_timer is not None and not self.started:
            Reactor.cancel(self.start_timer)
            self.start()

    def start(self):
        if self.started or self.done:
            return
        self.started = True
        exe = self.argv[0]
        if "/" in exe:
            path = os.path.join(self.cwd, exe)
            found = path if os.access(path, os.X_OK) else None
        else:
            found = shutil.which(exe, path=self.env.get("PATH"))
        if not found:
            msg = ('error executing command in container: failed to exec in container: '
                   'exec: "%s": executable file not found in $PATH' % exe)
            return self.end(None, status=internal_status(msg), error=msg)
        run = [exe] + [in_pod(a) for a in self.argv[1:]]
        try:
            if self.tty:
                master, slave = os.openpty()
                w, h = self.size or (80, 24)
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", h, w, 0, 0))
                try:
                    self.proc = subprocess.Popen([sys.executable, "-c", CTTY_SHIM] + run, cwd=self.cwd,
                                                 env=dict(self.env, TERM="xterm"), stdin=slave,
                                                 stdout=slave, stderr=slave, start_new_session=True)
                finally:
                    os.close(slave)
                os.set_blocking(master, False)
                self.in_fd = master
                self.outputs[master] = 1
                self.files[master] = None
            else:
                pipe, null = subprocess.PIPE, subprocess.DEVNULL
                self.proc = subprocess.Popen(run, cwd=self.cwd, env=self.env,
                                             stdin=pipe if self.want_stdin else null,
                                             stdout=pipe if self.want_stdout else null,
                                             stderr=pipe if self.want_stderr else null,
                                             start_new_session=True)
                if self.proc.stdin is not None:
                    self.in_fd = self.proc.stdin.fileno()
                    os.set_blocking(self.in_fd, False)
                for f, ch in ((self.proc.stdout, 1), (self.proc.stderr, 2)):
                    if f is not None:
                        os.set_blocking(f.fileno(), False)
                        self.outputs[f.fileno()] = ch
                        self.files[f.fileno()] = f
        except OSError as e:
            msg = "error executing command in container: failed to exec in container: %s" % e
            return self.end(None, status=internal_status(msg), error=msg)
        with LIVE_LOCK:
            LIVE.add(self.proc)
        for fd in self.outputs:
            self.r.want(fd, "r", lambda fd=fd: self.readable(fd))
        if not self.want_stdin and not self.tty:
            self.in_closed = True
        self.pump()
        self.poll()

    def readable(self, fd):
        if self.transport.backlog() > HIGH_WATER:
            self.r.want(fd, "r", None)
            self.paused.add(fd)
            self.transport.when_drained(self.resume_outputs)
            return
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:        # EIO from a pty master once the last slave is closed
            data = b""
        if not data:
            self.close_output(fd)
            self.poll()
            return
        ch = self.outputs[fd]
        if (ch == 1 and self.want_stdout) or (ch == 2 and self.want_stderr):
            self.transport.write(ch, data)

    def resume_outputs(self):
        for fd in list(self.paused):
            self.paused.discard(fd)
            if fd in self.outputs:
                self.r.want(fd, "r", lambda fd=fd: self.readable(fd))

    def close_output(self, fd):
        self.r.forget(fd)
        self.outputs.pop(fd, None)
        self.paused.discard(fd)
        if fd == self.in_fd:     # the pty master: input ends with it
            self.in_fd = None
            self.in_closed = True
        self.close_fd(fd)

    def close_fd(self, fd):
        """Close through the owning file object, so no finalizer closes a reused number."""
        f = self.files.pop(fd, None)
        try:
            f.close() if f is not None else os.close(fd)
        except OSError:
            pass

    def pump(self):
        """Move buffered stdin into the process (pipe or pty master)."""
        fd = self.in_fd
        if fd is None or self.in_closed:
            if self.in_closed:
                self.in_buf.clear()
            self.throttle()
            return
        while self.in_buf:
            try:
                n = os.write(fd, self.in_buf[:65536])
            except BlockingIOError:
                self.r.want(fd, "w", self.pump)
                self.throttle()
                return
            except OSError:      # the process closed its stdin
                self.in_buf.clear()
                self.close_input()
                return
            del self.in_buf[:n]
        self.r.want(fd, "w", None)
        self.throttle()
        if self.in_eof:
            if self.tty:
                try:
                    os.write(fd, b"\x04")   # end of input at the terminal: ^D
                except OSError:
                    pass
                self.in_closed = True
            else:
                self.close_input()

    def close_input(self):
        self.in_closed = True
        if self.in_fd is not None and not self.tty:
            self.r.forget(self.in_fd)
            self.proc.stdin.close()
            self.in_fd = None

    def throttle(self):
        want_pause = len(self.in_buf) > STDIN_HIGH
        if want_pause != self.input_paused:
            self.input_paused = want_pause
            self.transport.pause_input(want_pause)

    def poll(self):
        """Once the process has exited and its output is drained, end the session."""
        Reactor.cancel(self.poll_timer)
        self.poll_timer = None
        if self.done or self.proc is None:
            return
        if self.proc.poll() is not None:
            now = time.monotonic()
            self.exited_at = self.exited_at or now
            # Output still open after the exit belongs to a leftover child: wait a moment.
            if not self.outputs or now - self.exited_at > 1.0:
                self.drain_outputs()
                self.end(self.exit_code())
                return
        self.poll_timer = self.r.later(0.05, self.poll)

    def drain_outputs(self):
        for fd in list(self.outputs):
            ch = self.outputs[fd]
            while True:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                if (ch == 1 and self.want_stdout) or (ch == 2 and self.want_stderr):
                    self.transport.write(ch, data)
            self.close_output(fd)

    def exit_code(self):
        if self.proc is None or self.proc.returncode is None:
            return None
        rc = self.proc.returncode
        return 128 - rc if rc < 0 else rc

    def end(self, code, status=None, error=None, client_gone=False):
        if self.done:
            return
        self.done = True
        for fd in list(self.outputs):
            self.r.forget(fd)
            self.close_fd(fd)
        self.outputs.clear()
        if self.in_fd is not None and not self.tty:
            self.r.forget(self.in_fd)
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self.proc is not None:
            with LIVE_LOCK:
                LIVE.discard(self.proc)
            kill_group(self.proc)      # nothing may outlive the session in the "pod"
        entry = {"event": "exec_end", "path": self.info["path"], "command": self.info["command"],
                 "exit_code": code, "protocol": self.info["protocol"]}
        entry.update((k, v) for k, v in self.info.items() if k not in entry)
        if error:
            entry["error"] = error
        if client_gone:
            entry["client_gone"] = True
        log_event(entry)
        if not client_gone:
            self.transport.finish(status or exit_status(self.info["command"], code))


class WsExec:
    """Remote command channels over a WebSocket: one byte of channel, then data."""

    def __init__(self, ws, session, protocol):
        self.ws, self.s = ws, session
        self.base64 = "base64" in protocol
        self.v5 = protocol == "v5.channel.k8s.io"
        self.json_status = protocol.startswith(("v4.", "v5."))
        session.transport = self

    def message(self, op, payload):
        if not payload:
            return
        if self.base64:
            ch = payload[0] - ord("0")
            try:
                data = base64.b64decode(payload[1:])
            except ValueError:
                return
        else:
            ch, data = payload[0], payload[1:]
        if self.v5 and ch == 255:       # v5 close signal: the next byte names the stream
            if data[:1] == b"\x00":
                self.s.stdin_eof()
            return
        if ch == 0:
            self.s.stdin(data)
        elif ch == 4:
            self.s.resize(data)

    def end(self, why):
        self.s.gone()

    def write(self, ch, data):
        if self.base64:
            self.ws.send(WebSocket.TEXT, bytes([ord("0") + ch]) + base64.b64encode(data))
        else:
            self.ws.send(WebSocket.BINARY, bytes([ch]) + data)

    def backlog(self):
        return self.ws.conn.backlog()

    def when_drained(self, cb):
        self.ws.conn.when_drained(cb)

    def pause_input(self, flag):
        (self.ws.conn.pause if flag else self.ws.conn.resume)()

    def finish(self, status):
        if self.json_status:
            self.write(3, dumps(status))
        elif status.get("status") != "Success":
            self.write(3, status.get("message", "").encode("utf-8"))
        self.ws.close(1000)


class SpdyExec:
    """Remote command streams over SPDY: one client-opened stream per streamtype."""

    def __init__(self, conn, session, protocol, expected):
        self.conn, self.s, self.protocol, self.expected = conn, session, protocol, expected
        self.spdy = Spdy(conn.send, self.syn, self.data, self.rst, self.goaway)
        self.streams, self.types = {}, {}
        session.transport = self
        self.timer = conn.r.later(STREAM_CREATION_TIMEOUT, self.timeout)

    def syn(self, sid, headers, fin):
        t = (headers.get("streamtype") or [""])[0]
        if t not in STREAM_TYPES or t in self.streams:
            self.spdy.rst(sid, SPDY_REFUSED_STREAM)
            return
        self.spdy.reply(sid)
        self.streams[t], self.types[sid] = sid, t
        if fin and t == "stdin":
            self.s.stdin_eof()
        if self.expected <= set(self.streams):
            Reactor.cancel(self.timer)
            self.s.ready()

    def timeout(self):
        if not self.s.started and not self.s.done:
            msg = "timed out waiting for client to create streams"
            self.s.end(None, status=internal_status(msg), error=msg)

    def data(self, sid, data, fin):
        t = self.types.get(sid)
        if t == "stdin":
            if data:
                self.s.stdin(data)
            if fin:
                self.s.stdin_eof()
        elif t == "resize" and data:
            self.s.resize(data)

    def rst(self, sid, status):
        if self.types.get(sid) == "stdin":
            self.s.stdin_eof()

    def goaway(self):
        self.s.gone()

    def eof(self):
        self.s.gone()

    def write(self, ch, data):
        self.spdy.data(self.streams.get("stdout" if ch == 1 else "stderr"), data)

    def backlog(self):
        return self.conn.backlog()

    def when_drained(self, cb):
        self.conn.when_drained(cb)

    def pause_input(self, flag):
        (self.conn.pause if flag else self.conn.resume)()

    def finish(self, status):
        Reactor.cancel(self.timer)
        for t in ("stdout", "stderr"):
            self.spdy.finish(self.streams.get(t))
        if self.protocol == "v4.channel.k8s.io":
            payload = dumps(status)
        else:
            payload = b"" if status.get("status") == "Success" else status.get("message", "").encode("utf-8")
        if "error" in self.streams:
            self.spdy.data(self.streams["error"], payload, fin=True)
        for t in ("stdin", "resize"):
            self.spdy.finish(self.streams.get(t))
        self.spdy.goaway()
        self.conn.close()


class ForwardedConn:
    """One forwarded connection: a TCP connection to 127.0.0.1:port on this host."""

    def __init__(self, owner, port, label):
        self.owner, self.r, self.port, self.label = owner, owner.r, port, label
        self.sock = None
        self.to_target = bytearray()
        self.client_fin = self.target_eof = self.shut_target = self.closed = False
        self.connected = False
        self.sent = self.received = 0
        self.error = None

    def connect(self):
        if not 0 < self.port < 65536:
            return self.fail("invalid port %d" % self.port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        rc = self.sock.connect_ex(("127.0.0.1", self.port))
        if rc not in (0, errno.EINPROGRESS):
            return self.fail(self.dial_error(rc))
        self.r.want(self.sock.fileno(), "w", self.connect_done)

    def dial_error(self, rc):
        return "dial tcp4 127.0.0.1:%d: connect: %s" % (self.port, os.strerror(rc).lower())

    def connect_done(self):
        self.r.want(self.sock.fileno(), "w", None)
        rc = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if rc:
            return self.fail(self.dial_error(rc))
        self.connected = True
        self.r.want(self.sock.fileno(), "r", self.readable)
        self.pump()

    def fail(self, why):
        self.error = ("error forwarding port %d to pod %s, uid : failed to connect to "
                      "localhost:%d inside the pod: %s" % (self.port, self.label, self.port, why))
        self.owner.forward_error(self, self.error)
        self.close()

    def from_client(self, data):
        if self.closed:
            return
        self.sent += len(data)
        self.to_target += data
        self.pump()

    def client_done(self):
        self.client_fin = True
        self.pump()

    def pump(self):
        if not self.connected or self.closed:
            return
        fd = self.sock.fileno()
        while self.to_target:
            try:
                n = self.sock.send(self.to_target[:65536])
            except (BlockingIOError, InterruptedError):
                self.r.want(fd, "w", self.pump)
                return
            except OSError:
                self.to_target.clear()
                self.client_fin = True
                break
            del self.to_target[:n]
        self.r.want(fd, "w", None)
        if self.client_fin and not self.shut_target:
            self.shut_target = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.maybe_done()

    def readable(self):
        if self.owner.backlog() > HIGH_WATER:
            self.r.want(self.sock.fileno(), "r", None)
            self.owner.when_drained(self.resume)
            return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self.received += len(data)
            self.owner.to_client(self, data)
            return
        self.r.want(self.sock.fileno(), "r", None)
        self.target_eof = True
        self.owner.to_client_eof(self)
        self.maybe_done()

    def resume(self):
        if not self.closed and not self.target_eof:
            self.r.want(self.sock.fileno(), "r", self.readable)

    def maybe_done(self):
        if self.target_eof and self.shut_target:
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.sock is not None:
            self.r.forget(self.sock.fileno())
            self.sock.close()
        self.owner.forward_done(self)


class SpdyPortForward:
    """portforward.k8s.io over SPDY: a data and an error stream per forwarded connection,
    paired by their requestid header (or, without one, error stream id + 2 = data)."""

    def __init__(self, conn, info, write=None, close=None):
        self.conn, self.r, self.info = conn, conn.r, info
        self.spdy = Spdy(write or conn.send, self.syn, self.data, self.rst, self.goaway)
        self.close_fn = close or conn.close
        self.fwds = []
        self.pairs = {}      # request id -> {"error": sid, "data": sid, "fwd": ForwardedConn}
        self.by_sid = {}
        self.ended = False

    def syn(self, sid, headers, fin):
        t = (headers.get("streamtype") or [""])[0]
        if t not in ("data", "error"):
            self.spdy.rst(sid, SPDY_REFUSED_STREAM)
            return
        try:
            port = int((headers.get("port") or [""])[0])
        except ValueError:
            port = 0
        rid = (headers.get("requestid") or [None])[0]
        if rid is None:
            rid = "id-%d" % (sid if t == "error" else sid - 2)
        self.spdy.reply(sid)
        pair = self.pairs.setdefault(rid, {"port": port})
        pair[t] = sid
        self.by_sid[sid] = (rid, t)
        if "error" in pair and "data" in pair and "fwd" not in pair:
            fwd = pair["fwd"] = ForwardedConn(self, port, self.info["pod"])
            self.fwds.append(fwd)
            fwd.pair = pair
            fwd.rid = rid
            fwd.connect()
            if pair.get("data_fin"):
                fwd.client_done()
        if fin and t == "data":
            self.data(sid, b"", True)

    def data(self, sid, data, fin):
        rid, t = self.by_sid.get(sid, (None, None))
        if t != "data":
            return
        pair = self.pairs.get(rid)
        if pair is None:
            return
        fwd = pair.get("fwd")
        if fwd is None:
            if fin:
                pair["data_fin"] = True
            return
        if data:
            fwd.from_client(data)
        if fin:
            fwd.client_done()

    def rst(self, sid, status):
        rid, t = self.by_sid.get(sid, (None, None))
        pair = self.pairs.get(rid)
        if pair and pair.get("fwd") is not None:
            pair["fwd"].close()

    def to_client(self, fwd, data):
        self.spdy.data(fwd.pair["data"], data)

    def to_client_eof(self, fwd):
        self.spdy.finish(fwd.pair["data"])

    def forward_error(self, fwd, message):
        self.spdy.data(fwd.pair["error"], message.encode("utf-8"), fin=True)
        self.spdy.finish(fwd.pair["data"])

    def forward_done(self, fwd):
        self.fwds.remove(fwd)
        pair = self.pairs.pop(fwd.rid, None)
        if pair is None:
            return
        self.spdy.finish(pair["error"])
        self.spdy.finish(pair["data"])
        for k in ("error", "data"):
            self.by_sid.pop(pair[k], None)
        log_forward_end(self.info, fwd)

    def backlog(self):
        return self.conn.backlog()

    def when_drained(self, cb):
        self.conn.when_drained(cb)

    def goaway(self):
        self.end()

    def end(self, why=None):
        if self.ended:
            return
        self.ended = True
        for pair in list(self.pairs.values()):
            if pair.get("fwd") is not None:
                pair["fwd"].close()
        self.close_fn()


class WsPortForward:
    """Port-forward over plain WebSocket channels (v4.channel.k8s.io, ?ports=): for the
    i-th port, channel 2i carries data and 2i+1 errors; the first message the server
    sends on each channel is the port number, two bytes little-endian."""

    def __init__(self, ws, info, ports):
        self.ws, self.r, self.info = ws, ws.conn.r, info
        self.fwds = []
        self.ended = False
        for i, port in enumerate(ports):
            fwd = ForwardedConn(self, port, info["pod"])
            fwd.index, fwd.rid = i, str(i)
            self.fwds.append(fwd)

    def open(self):
        for fwd in self.fwds:
            for ch in (2 * fwd.index, 2 * fwd.index + 1):
                self.ws.send(WebSocket.BINARY, bytes([ch]) + struct.pack("<H", fwd.port))
        for fwd in self.fwds:
            fwd.connect()

    def message(self, op, payload):
        if len(payload) < 1 or payload[0] % 2 or payload[0] // 2 >= len(self.fwds):
            return
        self.fwds[payload[0] // 2].from_client(payload[1:])

    def to_client(self, fwd, data):
        self.ws.send(WebSocket.BINARY, bytes([2 * fwd.index]) + data)

    def to_client_eof(self, fwd):
        fwd.close()      # no half-close in this protocol: the target's EOF ends the forward

    def forward_error(self, fwd, message):
        self.ws.send(WebSocket.BINARY, bytes([2 * fwd.index + 1]) + message.encode("utf-8"))

    def forward_done(self, fwd):
        log_forward_end(self.info, fwd)
        if all(f.closed for f in self.fwds) and not self.ended:
            self.ended = True
            self.ws.close(1000)

    def backlog(self):
        return self.ws.conn.backlog()

    def when_drained(self, cb):
        self.ws.conn.when_drained(cb)

    def end(self, why):
        self.ended = True
        for fwd in self.fwds:
            fwd.close()
        self.ws.conn.close()


def close_targets(fwds):
    """After the loop: drop whatever target sockets are still open."""
    for fwd in list(fwds):
        if fwd.sock is not None and not fwd.closed:
            fwd.closed = True
            fwd.sock.close()


def buffered_leftover(rfile, sock):
    """Bytes the request reader already buffered past the request head (normally none)."""
    sock.setblocking(False)
    try:
        return rfile.read1(262144) or b""
    except (OSError, ValueError):
        return b""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the connection's own thread (Handler.setup).
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, DISCONNECTS + (ssl.SSLError, OSError)):
            return
        super().handle_error(request, client_address)


def write_ready(path, port):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="Gatehouse test Kubernetes API server (in-memory stand-in)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--token", required=True, help="the bearer token every request must carry")
    ap.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    ap.add_argument("--tls-key", metavar="PEM")
    ap.add_argument("--log", metavar="PATH", help="append one JSON line per request")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("kube-apiserver: --tls-cert and --tls-key go together")

    Handler.token = args.token
    if args.log:
        Handler.log_file = open(args.log, "a", encoding="utf-8")
    seed(STORE)
    global POD_ROOT
    # Next to the ready file: a harness that removes that directory after killing
    # this process (even with SIGKILL, when no cleanup here runs) removes the pods too.
    POD_ROOT = tempfile.mkdtemp(prefix="pods-", dir=os.path.dirname(os.path.abspath(args.ready_file)))
    for pod in STORE.list(RES["pods"], None, [], [])[0]:
        pod_dir(meta(pod)["namespace"], meta(pod)["name"])

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        server.ssl_context = ctx
    try:
        write_ready(args.ready_file, server.server_address[1])
        server.serve_forever()
    finally:
        server.server_close()
        with LIVE_LOCK:
            for proc in LIVE:
                kill_group(proc)
        shutil.rmtree(POD_ROOT, ignore_errors=True)


if __name__ == "__main__":
    main()
