#!/usr/bin/env bash
# Check the Grafana dashboard and the Prometheus alert rules of deploy/
# against the proxy itself (make check-observability, run by make check).
#
#   tests/check-observability.sh build/pg-tls-proxy
#
# 1. promtool check rules and promtool test rules on deploy/prometheus/.
# 2. The dashboard JSON parses, has the DS_PROMETHEUS data source variable
#    and the instance and route variables, and every panel has a query.
# 3. Every panel expression is valid PromQL: each, with Grafana's variables
#    replaced, becomes a recording rule that promtool check rules parses.
# 4. A proxy started here (a throw-away self-signed certificate, an upstream
#    that is never dialled) serves /metrics; promtool check metrics lints it
#    (names, HELP, units), and every metric name used by a dashboard panel, a
#    template variable or an alert rule must be in that scrape ("up" aside,
#    which Prometheus makes), so renaming a metric breaks this check.
# promtool comes from scripts/fetch-promtool.sh; python3 with PyYAML reads the
# rules. About 2 s once promtool is cached. Loopback only.
set -euo pipefail

BIN=${1:?usage: tests/check-observability.sh PATH-TO-pg-tls-proxy}
HERE=$(cd "$(dirname "$0")/.." && pwd)
RULES=$HERE/deploy/prometheus/pg-tls-proxy-alerts.yml
RULE_TESTS=$HERE/deploy/prometheus/pg-tls-proxy-alerts.test.yml
DASH=$HERE/deploy/grafana/pg-tls-proxy.json
PY=/usr/bin/python3

PASS=0
FAILED=0
pass() {
    PASS=$((PASS + 1))
    echo "ok - $1"
}
fail() {
    FAILED=$((FAILED + 1))
    echo "not ok - $1"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/#   /'
}

PROMTOOL=$("$HERE/scripts/fetch-promtool.sh") || {
    echo "check-observability: no promtool (scripts/fetch-promtool.sh failed)" >&2
    exit 1
}
"$PY" -c 'import yaml' 2>/dev/null || {
    echo "check-observability: python3 has no yaml module (Debian: python3-yaml)" >&2
    exit 1
}

TMP=$(mktemp -d)
PID=
cleanup() {
    [ -z "$PID" ] || kill "$PID" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- 1. the alert rules ----
if out=$("$PROMTOOL" check rules "$RULES" 2>&1); then
    pass "promtool check rules: $(grep -o '[0-9]* rules found' <<<"$out")"
else
    fail "promtool check rules $RULES" "$out"
fi
if out=$(cd "$(dirname "$RULE_TESTS")" && "$PROMTOOL" test rules "$(basename "$RULE_TESTS")" 2>&1); then
    pass "promtool test rules: every alert fires when it should and stays quiet otherwise"
else
    fail "promtool test rules $RULE_TESTS" "$out"
fi
# Each alert has a test: a new rule without one fails here.
if out=$("$PY" - "$RULES" "$RULE_TESTS" <<'EOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
tested = {t["alertname"] for g in tests["tests"] for t in g.get("alert_rule_test", [])
          if t.get("exp_alerts")}
missing = sorted(alerts - tested)
for r in (r for g in rules["groups"] for r in g["rules"]):
    a = r.get("annotations", {})
    if not a.get("summary") or not a.get("description"):
        print("no summary or description:", r.get("alert"))
        sys.exit(1)
if missing:
    print("alerts never tested firing:", " ".join(missing))
    sys.exit(1)
print(len(alerts))
EOF
); then
    pass "every one of the $out alerts has a summary, a description and a test where it fires"
else
    fail "alert rules: annotations and tests" "$out"
fi

# ---- 2 and 3. the dashboard: JSON, variables, PromQL ----
if out=$("$PY" - "$DASH" "$TMP/dash-rules.yml" "$TMP/dash-metrics.txt" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
var = {v["name"]: v for v in d["templating"]["list"]}
assert var.get("DS_PROMETHEUS", {}).get("type") == "datasource", "no DS_PROMETHEUS datasource variable"
for name in ("instance", "route"):
    assert var.get(name, {}).get("type") == "query", "no %s query variable" % name
exprs = []
def walk(panels):
    for p in panels:
        if p.get("type") == "row":
            walk(p.get("panels", []))
            continue
        assert p.get("targets"), "panel %r has no query" % p.get("title")
        assert p.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}", \
            "panel %r does not use ${DS_PROMETHEUS}" % p.get("title")
        for t in p["targets"]:
            exprs.append((p["title"], t["expr"]))
walk(d["panels"])
assert len(exprs) >= 20, "only %d panel queries" % len(exprs)
subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
         "$instance": ".*", "$route": ".*"}
with open(sys.argv[2], "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        for k, v in subst.items():
            e = e.replace(k, v)
        assert "$" not in e, "panel %r: unknown variable in %s" % (title, e)
        f.write("      - record: dashboard:panel%d\n        expr: %s\n" % (i, json.dumps(e)))
# Metric names: what is left of each expression once strings are gone.
names = set()
queries = [e for _, e in exprs] + [v["definition"] for v in var.values() if v.get("definition")]
for e in queries:
    bare = re.sub(r'"(\\.|[^"\\])*"', '""', e)
    found = set(re.findall(r'\b(?:pg_tls_proxy_\w+|process_\w+)', bare))
    assert found, "no metric in %s" % e
    names |= found
open(sys.argv[3], "w").write("\n".join(sorted(names)) + "\n")
print(len(exprs))
EOF
); then
    pass "dashboard: JSON parses; DS_PROMETHEUS, instance and route variables; $out panel queries"
else
    fail "dashboard $DASH" "$out"
fi
if [ -s "$TMP/dash-rules.yml" ] && out=$("$PROMTOOL" check rules "$TMP/dash-rules.yml" 2>&1); then
    pass "dashboard: every panel expression is valid PromQL (promtool check rules)"
else
    fail "dashboard: panel expressions as PromQL" "${out:-no expressions}"
fi
"$PY" - "$RULES" >"$TMP/alert-metrics.txt" <<'EOF'
import re, sys, yaml
names = set()
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        bare = re.sub(r'"(\\.|[^"\\])*"', '""', r["expr"])
        names |= set(re.findall(r'\b(?:pg_tls_proxy_\w+|process_\w+)', bare))
print("\n".join(sorted(names)))
EOF

# ---- 4. a real scrape ----
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -days 30 -keyout "$TMP/key.pem" -out "$TMP/crt.pem" \
    >/dev/null 2>&1
PORT=$(free_port)
ADMIN=$(free_port)
"$BIN" --server-certificate-path "$TMP/crt.pem" --server-private-key-path "$TMP/key.pem" \
    --server-host 127.0.0.1 --server-port "$PORT" --client-connection-host-or-ip 127.0.0.1 \
    --client-connection-port "$PORT" --client-ca-roots-path "$TMP/crt.pem" \
    --admin-address "127.0.0.1:$ADMIN" --workers 1 2>"$TMP/proxy.log" &
PID=$!
for _ in $(seq 50); do
    curl -sf --max-time 2 -o "$TMP/metrics.txt" "http://127.0.0.1:$ADMIN/metrics" && break
    sleep 0.1
done
if [ ! -s "$TMP/metrics.txt" ]; then
    fail "a proxy started here serves /metrics" "$(tail -n 5 "$TMP/proxy.log")"
else
    pass "a proxy started here serves /metrics ($(wc -l <"$TMP/metrics.txt") lines)"
    if out=$("$PROMTOOL" check metrics <"$TMP/metrics.txt" 2>&1); then
        pass "promtool check metrics: the scrape passes its lint (names, HELP, units)"
    else
        fail "promtool check metrics" "$out"
    fi
    # The families of the scrape, and a histogram's _bucket/_sum/_count.
    awk '$1 == "#" && $2 == "TYPE" { print $3; if ($4 == "histogram") { print $3 "_bucket";
        print $3 "_sum"; print $3 "_count" } }' "$TMP/metrics.txt" | sort -u >"$TMP/scraped.txt"
    for what in dash alert; do
        missing=$(comm -23 <(sort -u "$TMP/$what-metrics.txt" | grep .) "$TMP/scraped.txt")
        n=$(grep -c . "$TMP/$what-metrics.txt" || true)
        label=$([ "$what" = dash ] && echo "dashboard" || echo "alert rules")
        if [ "$n" -gt 0 ] && [ -z "$missing" ]; then
            pass "$label: all $n metric names used are in the proxy's /metrics"
        else
            fail "$label: metric names the proxy does not export" "${missing:-none found}"
        fi
    done
fi

echo "observability: $PASS passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
