#!/usr/bin/env bash
# Check the Kubernetes manifests of deploy/kubernetes/ against the proxy and
# its image (make check-k8s, run by make check). No cluster is needed, and
# none is used: kubeconform and kubectl are not in Debian 12, so the schemas
# are not validated; what is checked is what a schema cannot know.
#
#   tests/check-k8s.sh build/pg-tls-proxy
#
# - every file parses (python3 + PyYAML) and kustomization.yaml lists them all;
# - every environment variable the Deployment sets (env and the ConfigMap of
#   envFrom) is a PG_TLS_PROXY_* name that pg-tls-proxy --help lists, and
#   every --flag in its args is an option --help lists;
# - the pod runs as the Dockerfile's numeric USER and group, non-root, with a
#   read-only root, no privilege escalation, no capabilities, seccomp
#   RuntimeDefault, and can read the mounted Secret (group-readable mode and
#   fsGroup), which is mounted whole (no subPath: the watch needs the
#   directory) and is the Certificate's secretName;
# - the probes ask /healthz or /readyz on the container port of the admin
#   address the environment sets (on all addresses, as the kubelet needs);
# - terminationGracePeriodSeconds is above the shutdown timeout in use, plus
#   the preStop sleep and the 5 s the proxy gives ending sessions to flush;
# - the load balancer Service's targetPort is the listen port, and it does not
#   carry the admin port; the ServiceMonitor's port exists on the Service it
#   selects; the PodDisruptionBudget and Services select the pods; the
#   NetworkPolicy restricts who reaches the admin port;
# - the ConfigMap's values start the real binary (paths, database and
#   addresses moved to loopback): /healthz answers 200, SIGTERM exits 0.
# About 1 s. Exits 1 on the first file that does not parse, else after
# listing every failed check.
set -euo pipefail

BIN=${1:?usage: tests/check-k8s.sh PATH-TO-pg-tls-proxy}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
"$PY" -c 'import yaml' 2>/dev/null || {
    echo "check-k8s: python3 has no yaml module (Debian: python3-yaml)" >&2
    exit 1
}
TMP=$(mktemp -d)
PID=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    [ -z "$PID" ] || kill -KILL "$PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
"$BIN" --help >"$TMP/help.txt"

rc=0
"$PY" - "$HERE/deploy/kubernetes" "$HERE/Dockerfile" "$TMP/help.txt" "$TMP/env.txt" <<'EOF' || rc=1
import os, re, sys, yaml

kdir, dockerfile, helpfile, envfile = sys.argv[1:5]
help_text = open(helpfile).read()
help_envs = set(re.findall(r"env: (PG_TLS_PROXY_[A-Z0-9_]+)", help_text))
help_flags = set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M))
passed = failed = 0


def check(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok - k8s: " + what)
    else:
        failed += 1
        print("not ok - k8s: " + what + (("\n#   " + why) if why else ""))


docs = []
files = sorted(f for f in os.listdir(kdir) if f.endswith((".yaml", ".yml")))
for f in files:
    try:
        for d in yaml.safe_load_all(open(os.path.join(kdir, f))):
            if d is not None:
                docs.append((f, d))
    except yaml.YAMLError as e:
        print("not ok - k8s: %s parses\n#   %s" % (f, e))
        sys.exit(1)
check(all(d.get("apiVersion") and d.get("kind") and
          (d["kind"] == "Kustomization" or d.get("metadata", {}).get("name")) for _, d in docs),
      "all %d files parse; every object has apiVersion, kind and a name" % len(files))


def one(kind, pred=lambda d: True):
    found = [d for _, d in docs if d["kind"] == kind and pred(d)]
    assert len(found) == 1, "expected one %s, found %d" % (kind, len(found))
    return found[0]


kust = one("Kustomization")
check(sorted(kust["resources"]) == sorted(f for f in files if f != "kustomization.yaml"),
      "kustomization.yaml lists every manifest", "resources: %s" % kust["resources"])

dep = one("Deployment")
pod = dep["spec"]["template"]["spec"]
ctr = pod["containers"][0]
pod_labels = dep["spec"]["template"]["metadata"]["labels"]


def selects(selector):
    return all(pod_labels.get(k) == v for k, v in selector.items())


# ---- environment and flags ----
env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
for src in ctr.get("envFrom", []):
    ref = src.get("configMapRef") or src.get("secretRef")
    kind = "ConfigMap" if "configMapRef" in src else "Secret"
    obj = [d for _, d in docs if d["kind"] == kind and d["metadata"]["name"] == ref["name"]]
    check(len(obj) == 1 or ref.get("optional"), "envFrom %s %s is among the manifests" % (kind, ref["name"]))
    for o in obj:
        env.update(o.get("data") or o.get("stringData") or {})
bad = sorted(n for n in env if n not in help_envs)
check(env and not bad, "every one of the %d variables is a PG_TLS_PROXY_* name in --help" % len(env),
      "unknown: %s" % " ".join(bad))
args = [a for a in ctr.get("args", []) + ctr.get("command", [])[1:] if a.startswith("--")]
badf = sorted(a.split("=")[0] for a in args if a.split("=")[0] not in help_flags)
check(not badf, "every --flag in args (%d) is an option in --help" % len(args), " ".join(badf))
check(ctr["image"].split("/")[-1].split(":")[0] == "pg-tls-proxy", "the image is pg-tls-proxy")

# ---- identity and hardening ----
user = re.search(r"^USER\s+(\d+)(?::(\d+))?\s*$", open(dockerfile).read(), re.M)
check(user is not None, "the Dockerfile's USER is numeric")
uid = int(user.group(1)) if user else -1
gid = int(user.group(2) or uid) if user else -1
psc, csc = pod.get("securityContext", {}), ctr.get("securityContext", {})
check(psc.get("runAsUser") == uid and psc.get("runAsGroup") == gid and psc.get("fsGroup") == gid,
      "runAsUser/runAsGroup/fsGroup are the Dockerfile's USER %d:%d" % (uid, gid),
      "pod securityContext: %s" % psc)
check(psc.get("runAsNonRoot") is True and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
      "runAsNonRoot and seccomp RuntimeDefault")
check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
      and csc.get("capabilities", {}).get("drop") == ["ALL"],
      "read-only root, no privilege escalation, every capability dropped")
check(dep["spec"]["replicas"] >= 2, "at least two replicas")

# ---- the certificate Secret ----
cert = one("Certificate")
crt_path = env.get("PG_TLS_PROXY_SERVER_CERTIFICATE_PATH", "")
key_path = env.get("PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH", "")
vols = {v["name"]: v for v in pod.get("volumes", [])}
mount = [m for m in ctr.get("volumeMounts", [])
         if crt_path.startswith(m["mountPath"].rstrip("/") + "/")]
ok = len(mount) == 1 and "secret" in vols.get(mount[0]["name"], {})
sec = vols[mount[0]["name"]]["secret"] if ok else {}
check(ok and sec.get("secretName") == cert["spec"]["secretName"] and
      os.path.dirname(key_path) == os.path.dirname(crt_path),
      "the certificate and key are in the Certificate's Secret (%s)" % cert["spec"]["secretName"])
check(ok and mount[0].get("readOnly") is True and "subPath" not in mount[0],
      "the Secret is mounted read-only and whole (no subPath: renewals reach the pod)")
mode = sec.get("defaultMode", 0o644)
check(ok and mode & 0o040 and not mode & 0o007,
      "the Secret's files are group-readable (fsGroup %d) and not world-readable: mode %o" % (gid, mode))
check(env.get("PG_TLS_PROXY_WATCH_CERTIFICATES") in ("1", "true", "yes", "on"),
      "--watch-certificates is on, so a renewed Secret is loaded without a restart")

# ---- ports, probes and stop ----
ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}


def port_of(p):
    return ports.get(p) if isinstance(p, str) else p


admin = env.get("PG_TLS_PROXY_ADMIN_ADDRESS", "")
m = re.match(r"^(?:(.*):)?(\d+)$", admin)
check(m and m.group(1) in ("0.0.0.0", "[::]"),
      "the admin address listens on the pod's addresses (the kubelet's probes need it): %s" % admin)
admin_port = int(m.group(2)) if m else -1
for name in ("livenessProbe", "readinessProbe"):
    g = ctr.get(name, {}).get("httpGet", {})
    check(port_of(g.get("port")) == admin_port and
          re.match(r"^/(healthz|readyz(/[A-Za-z0-9_.-]+)?)$", g.get("path", "")),
          "%s asks %s on the admin port %d" % (name, g.get("path"), admin_port), str(g))
listen = int(env.get("PG_TLS_PROXY_SERVER_PORT", "5432"))
check(ports.get("postgres") == listen, "container port postgres is the listen port %d" % listen)
shutdown = int(env.get("PG_TLS_PROXY_SHUTDOWN_TIMEOUT", "30"))
pre = ctr.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
grace = pod.get("terminationGracePeriodSeconds", 30)
check(grace > shutdown + pre + 5,
      "terminationGracePeriodSeconds %d > shutdown timeout %d + preStop %d + 5 s flush"
      % (grace, shutdown, pre))

# ---- services, monitor, budget, policy ----
svcs = [d for _, d in docs if d["kind"] == "Service"]
lb = [s for s in svcs if s["spec"].get("type") == "LoadBalancer"]
check(len(lb) == 1 and lb[0]["spec"].get("externalTrafficPolicy") == "Local",
      "one LoadBalancer Service, externalTrafficPolicy Local (clients' addresses kept)")
for s in svcs:
    check(selects(s["spec"]["selector"]), "Service %s selects the pods" % s["metadata"]["name"])
lb_targets = [port_of(p["targetPort"]) for p in lb[0]["spec"]["ports"]] if lb else []
check(lb_targets == [listen], "the LoadBalancer's targetPort is the listen port %d, and only it" % listen,
      "targets: %s" % lb_targets)
mon = one("ServiceMonitor")
mon_svc = [s for s in svcs if all(s["metadata"].get("labels", {}).get(k) == v
                                  for k, v in mon["spec"]["selector"]["matchLabels"].items())]
check(len(mon_svc) == 1 and mon_svc[0]["spec"].get("type", "ClusterIP") == "ClusterIP",
      "the ServiceMonitor selects one ClusterIP Service")
ep = mon["spec"]["endpoints"][0]
sp = [p for p in (mon_svc[0]["spec"]["ports"] if mon_svc else []) if p["name"] == ep["port"]]
check(len(sp) == 1 and port_of(sp[0]["targetPort"]) == admin_port and ep.get("path") == "/metrics",
      "the ServiceMonitor scrapes /metrics on the admin port %d" % admin_port)
job = mon_svc[0]["metadata"]["labels"].get(mon["spec"].get("jobLabel", ""), "") if mon_svc else ""
check(job == "pg-tls-proxy", "the scrape's job is pg-tls-proxy (the alert rules' PgTlsProxyDown)",
      "job: %r" % job)
pdb = one("PodDisruptionBudget")
check(selects(pdb["spec"]["selector"]["matchLabels"]) and
      0 < pdb["spec"].get("minAvailable", 0) < dep["spec"]["replicas"],
      "the PodDisruptionBudget selects the pods and lets one go at a time")
np = one("NetworkPolicy")
check(selects(np["spec"]["podSelector"]["matchLabels"]), "the NetworkPolicy selects the pods")
open_admin = [r for r in np["spec"].get("ingress", [])
              if any(port_of(p.get("port")) == admin_port for p in r.get("ports", [])) and not r.get("from")]
any_admin = [r for r in np["spec"].get("ingress", [])
             if any(port_of(p.get("port")) == admin_port for p in r.get("ports", []))]
check(any_admin and not open_admin and not any(not r.get("ports") for r in np["spec"]["ingress"]),
      "the NetworkPolicy lets only chosen sources reach the admin port")

with open(envfile, "w") as f:
    for k, v in sorted(env.items()):
        f.write("%s=%s\n" % (k, v))
print("k8s: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF

# The ConfigMap's values start the real proxy: the environment exactly as the
# pod gets it, but for what cannot exist here (the database, the mounted
# certificate, the CA path) and the addresses, moved to loopback and free
# ports. Then SIGTERM: it drains (no sessions) and exits 0.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -days 2 -keyout "$TMP/key.pem" -out "$TMP/crt.pem" >/dev/null 2>&1
ADMIN=$(free_port)
PORT=$(free_port)
mapfile -t ENVS < <(grep -v -e '^PG_TLS_PROXY_SERVER_CERTIFICATE_PATH=' \
    -e '^PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH=' -e '^PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH=' \
    -e '^PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP=' -e '^PG_TLS_PROXY_ADMIN_ADDRESS=' \
    -e '^PG_TLS_PROXY_SERVER_PORT=' "$TMP/env.txt")
env -i PATH="$PATH" "${ENVS[@]}" PG_TLS_PROXY_SERVER_HOST=127.0.0.1 \
    PG_TLS_PROXY_SERVER_PORT="$PORT" PG_TLS_PROXY_ADMIN_ADDRESS="127.0.0.1:$ADMIN" \
    PG_TLS_PROXY_SERVER_CERTIFICATE_PATH="$TMP/crt.pem" \
    PG_TLS_PROXY_SERVER_PRIVATE_KEY_PATH="$TMP/key.pem" \
    PG_TLS_PROXY_CLIENT_CA_ROOTS_PATH="$TMP/crt.pem" \
    PG_TLS_PROXY_CLIENT_CONNECTION_HOST_OR_IP=127.0.0.1 "$BIN" 2>"$TMP/proxy.log" &
PID=$!
code=
for _ in $(seq 50); do
    code=$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/healthz" || true)
    [ "$code" = 200 ] && break
    sleep 0.1
done
kill -TERM "$PID" 2>/dev/null || true
prc=0
wait "$PID" || prc=$?
PID=
if [ "$code" = 200 ] && [ "$prc" = 0 ] && grep -q '"event":"stopped"' "$TMP/proxy.log" &&
    grep -q '"event":"started".*"max_connections":4000' "$TMP/proxy.log"; then
    echo "ok - k8s: the ConfigMap's values start the proxy (JSON log, cap 4000, /healthz 200, SIGTERM exits 0)"
else
    rc=1
    echo "not ok - k8s: the ConfigMap's values start the proxy (healthz $code, exit $prc)"
    tail -n 5 "$TMP/proxy.log" | sed 's/^/#   /'
fi
exit "$rc"
