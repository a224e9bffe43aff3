# shellcheck shell=bash
# shellcheck disable=SC2034 # CUR_LOG is read by run.sh's fail()
# peers.sh - several instances behind one load balancer (issue 14): three
# proxies on loopback (peer-ids 1, 2, 3, the same [peers] list, secret and
# front certificate) in front of the harness's PostgreSQL. A session runs
# pg_sleep through instance 1; its cancel key (first byte 01) sent:
#   a. as a plaintext CancelRequest to instance 3 cancels it (57014) via 1;
#   b. inside TLS to instance 2 cancels the next one;
#   c. to instance 1 as a PeerCancelRequest signed with the wrong secret,
#      with no hops left, 60 s old, or in plaintext: cancels nothing, each
#      refused with its reason; the same with a first byte that names no
#      listed instance (09), sent to instance 2: cancels nothing;
#   d. a PeerCancelRequest built by rawclient from the format (not the
#      proxy's code) with the right secret cancels it; the same bytes again
#      are a replay, refused;
#   f. a PeerCancelRequest reaching an instance that does not own the key
#      is passed on with one hop less: dropped when none is left, else it
#      cancels at the owner;
#   g. 200 cancels sent to instance 3 for instance 1's key: at most instance
#      3's per-address cancel budget is forwarded (rate limits apply at the
#      first instance), and the query is cancelled;
#   h. two instances with --server-proxy-protocol: a session arriving with
#      a PROXY v2 header through instance 1 is cancelled via instance 2,
#      which reaches 1 with a LOCAL header;
#   e. no log line of any instance holds a key; --peer-id without a secret
#      stops the start (exit 2) naming what is missing.
#
# Sourced by run.sh (uses its helpers: start_proxy, start_session, raw,
# expect, pass, fail, wait_line, count). Loopback only; about 15 s.

PEER_T0=$SECONDS
PEER_DIR=$TMP/peers
mkdir -p "$PEER_DIR"
(umask 077 && openssl rand -hex 32 >"$PEER_DIR/secret" && openssl rand -hex 32 >"$PEER_DIR/wrong")
it_free_port PEER_P1
it_free_port PEER_P2
it_free_port PEER_P3
{
    printf '; the same file on every instance; --peer-id differs\n'
    printf 'peer-secret-file = %s\n' "$PEER_DIR/secret"
    printf 'peer-ca-path = %s\n' "$CERTS/public-ca.crt"
    printf 'peer-tls-validation-host = localhost\n'
    printf 'workers = 2\n'
    printf '[peers]\n'
    printf '1 = 127.0.0.1:%s\n2 = 127.0.0.1:%s\n3 = 127.0.0.1:%s\n' "$PEER_P1" "$PEER_P2" "$PEER_P3"
} >"$PEER_DIR/peers.conf"

declare -A PEER_LOG
for n in 1 2 3; do
    port_var=PEER_P$n
    start_proxy "peer$n" "${!port_var}" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
        --config "$PEER_DIR/peers.conf" --peer-id "$n"
    PEER_LOG[$n]=$CUR_LOG
done
CUR_LOG=${PEER_LOG[1]}
expect "instance 1 logs its peering (2 other instances)" \
    "$(grep -m1 'event=peering' "${PEER_LOG[1]}")" 'peer_id=1 peers=2'

# peer_session NAME: a pg_sleep session through instance 1 (SESS_*).
peer_session() {
    start_session "$1" "$PEER_P1" "SELECT pg_sleep(30)" && [[ $SESS_KEY =~ ^[0-9a-f]{8,}$ ]]
}
# peer_outcome NAME PID SECONDS: the session's last line once it ended, or
# "still running" if it has not within SECONDS (then it is left running).
peer_outcome() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        kill -0 "$2" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$2" 2>/dev/null; then
        echo "still running"
        return
    fi
    wait "$2" 2>/dev/null
    grep -m1 '^query-end' "$TMP/$1.out" || tail -n 1 "$TMP/$1.out"
}

# ---- a. plaintext CancelRequest to instance 3 ----
if peer_session peer-a; then
    expect "a session through instance 1 gets a key whose first byte is its peer-id" \
        "$SESS_KEY" '^01'
    KEYS=("$SESS_KEY")
    raw cancel 127.0.0.1 "$PEER_P3" "$SESS_BPID" "$SESS_KEY" >/dev/null
    out=$(peer_outcome peer-a "$SESS_PID" $((10 * IT_TIME_SCALE)))
    expect "a. plaintext cancel sent to instance 3 cancels the query on instance 1 (57014)" \
        "$out" 'query-end sqlstate=57014'
    CUR_LOG=${PEER_LOG[3]}
    expect "a. instance 3 logs event=cancel_peer_forward to peer 1" \
        "$(grep -m1 'event=cancel_peer_forward' "${PEER_LOG[3]}")" "pid=$SESS_BPID peer=1 hops=2"
    CUR_LOG=${PEER_LOG[1]}
    wait_line "${PEER_LOG[1]}" 'event=cancel_forward .*via=peer' $((5 * IT_TIME_SCALE))
    expect "a. instance 1 logs event=cancel_peer_received from peer 3, then forwards upstream" \
        "$(grep -E 'event=cancel_peer_received|event=cancel_forward ' "${PEER_LOG[1]}" | head -2)" \
        "peer=3 pid=$SESS_BPID hops=2.*"$'\n'".*event=cancel_forward .*pid=$SESS_BPID .*via=peer"
else
    fail "a. session through instance 1" "$(oneline "$(cat "$TMP/peer-a.out")")"
fi

# ---- b. the same inside TLS to instance 2 ----
if peer_session peer-b; then
    KEYS+=("$SESS_KEY")
    raw cancel 127.0.0.1 "$PEER_P2" "$SESS_BPID" "$SESS_KEY" --tls >/dev/null
    out=$(peer_outcome peer-b "$SESS_PID" $((10 * IT_TIME_SCALE)))
    CUR_LOG=${PEER_LOG[2]}
    expect "b. cancel inside TLS sent to instance 2 cancels the query on instance 1 (57014)" \
        "$out" 'query-end sqlstate=57014'
    expect "b. instance 2 logs event=cancel_peer_forward to peer 1" \
        "$(grep -m1 'event=cancel_peer_forward' "${PEER_LOG[2]}")" "pid=$SESS_BPID peer=1"
else
    fail "b. session through instance 1" "$(oneline "$(cat "$TMP/peer-b.out")")"
fi

# ---- c. forged, out of hops, stale, plaintext, unknown peer; d. authentic + replay ----
if peer_session peer-c; then
    KEYS+=("$SESS_KEY")
    CUR_LOG=${PEER_LOG[1]}
    out=$(raw peer-cancel 127.0.0.1 "$PEER_P1" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/wrong" \
        --origin 2)
    expect "c. forged PeerCancelRequest (wrong secret): no answer" "$out" '^bytes=0 end=eof$'
    raw peer-cancel 127.0.0.1 "$PEER_P1" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 2 --hops 0 >/dev/null
    raw peer-cancel 127.0.0.1 "$PEER_P1" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 2 --age-ms 60000 >/dev/null
    raw peer-cancel 127.0.0.1 "$PEER_P1" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 2 --plaintext >/dev/null
    # The key with another first byte: instance 9 is not in [peers].
    raw cancel 127.0.0.1 "$PEER_P2" "$SESS_BPID" "09${SESS_KEY:2}" >/dev/null
    raw cancel 127.0.0.1 "$PEER_P2" "$SESS_BPID" "09${SESS_KEY:2}" --tls >/dev/null
    out=$(peer_outcome peer-c "$SESS_PID" 2)
    expect "c. wrong secret, 0 hops, 60 s old, plaintext, unknown peer 9: the query still runs" \
        "$out" '^still running$'
    refused=$(grep -o 'event=cancel_peer_refused .*reason="[a-z_ ()-]*"' "${PEER_LOG[1]}" |
        sed 's/.*reason=//' | tr '\n' ' ')
    expect "c. instance 1 names each refusal's reason" "$refused" \
        '^"bad_mac" "no_hops" "stale" "plaintext" $'
    n=$(count "${PEER_LOG[2]}" "event=cancel_peer_forward .*peer=9")
    expect "c. instance 2 forwards nothing for a key of unlisted instance 9" "$n" '^0$'

    out=$(raw peer-cancel 127.0.0.1 "$PEER_P1" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 2 --twice)
    out=$(peer_outcome peer-c "$SESS_PID" $((10 * IT_TIME_SCALE)))
    expect "d. a PeerCancelRequest built from the format with the shared secret cancels (57014)" \
        "$out" 'query-end sqlstate=57014'
    wait_line "${PEER_LOG[1]}" 'reason="replayed"' $((3 * IT_TIME_SCALE))
    expect "d. the same bytes again are refused as a replay" \
        "$(count "${PEER_LOG[1]}" 'event=cancel_peer_refused .*reason="replayed"')" '^1$'
else
    fail "c. session through instance 1" "$(oneline "$(cat "$TMP/peer-c.out")")"
fi

# ---- f. hops: an instance that is not the owner passes a message on, once ----
if peer_session peer-f; then
    KEYS+=("$SESS_KEY")
    CUR_LOG=${PEER_LOG[2]}
    raw peer-cancel 127.0.0.1 "$PEER_P2" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 3 --hops 1 >/dev/null
    out=$(peer_outcome peer-f "$SESS_PID" 2)
    expect "f. a message with its last hop at a non-owner (instance 2) cancels nothing" \
        "$out" '^still running$'
    expect "f. instance 2 logs it dropped, out of hops" \
        "$(grep -m1 'event=cancel_peer_dropped' "${PEER_LOG[2]}")" \
        "peer=3 pid=$SESS_BPID outcome=unknown_key"
    raw peer-cancel 127.0.0.1 "$PEER_P2" "$SESS_BPID" "$SESS_KEY" "$PEER_DIR/secret" \
        --origin 3 >/dev/null
    out=$(peer_outcome peer-f "$SESS_PID" $((10 * IT_TIME_SCALE)))
    expect "f. with a hop to spare, instance 2 passes it to instance 1, which cancels (57014)" \
        "$out" 'query-end sqlstate=57014'
    expect "f. instance 2 forwards it with one hop left" \
        "$(grep 'event=cancel_peer_forward' "${PEER_LOG[2]}" | tail -n 1)" \
        "pid=$SESS_BPID peer=1 hops=1"
else
    fail "f. session through instance 1" "$(oneline "$(cat "$TMP/peer-f.out")")"
fi

# ---- g. the first instance's cancel rate limit still holds ----
if peer_session peer-g; then
    KEYS+=("$SESS_KEY")
    CUR_LOG=${PEER_LOG[3]}
    before=$(count "${PEER_LOG[3]}" 'event=cancel_peer_forward')
    t0=$(now_ms)
    raw cancel-storm 127.0.0.1 "$PEER_P3" "$SESS_BPID" "$SESS_KEY" 200 5 --from 127.0.0.31 \
        >/dev/null
    storm_ms=$(($(now_ms) - t0))
    out=$(peer_outcome peer-g "$SESS_PID" $((10 * IT_TIME_SCALE)))
    expect "g. 200 cancels for instance 1's session sent to instance 3 cancel it (57014)" \
        "$out" 'query-end sqlstate=57014'
    sleep 0.3
    fwd=$(($(count "${PEER_LOG[3]}" 'event=cancel_peer_forward') - before))
    # 20 at once, then 5 a second (cancel.h): the storm lasted storm_ms.
    max=$((20 + 5 * (storm_ms / 1000 + 1)))
    if [ "$fwd" -ge 1 ] && [ "$fwd" -le "$max" ]; then
        pass "g. instance 3 forwards $fwd of 200 (its budget: at most $max in ${storm_ms} ms, 16 in flight)"
    else
        fail "g. instance 3 forwards within its cancel rate limit" \
            "$fwd forwards, at most $max expected in ${storm_ms} ms"
    fi
else
    fail "g. session through instance 1" "$(oneline "$(cat "$TMP/peer-g.out")")"
fi

# ---- h. behind a PROXY-protocol balancer: instances send each other LOCAL ----
it_free_port PEER_Q1
it_free_port PEER_Q2
{
    printf 'peer-secret-file = %s\npeer-ca-path = %s\n' "$PEER_DIR/secret" "$CERTS/public-ca.crt"
    printf 'peer-tls-validation-host = localhost\nserver-proxy-protocol = on\n'
    printf '[peers]\n1 = 127.0.0.1:%s\n2 = 127.0.0.1:%s\n' "$PEER_Q1" "$PEER_Q2"
} >"$PEER_DIR/pp.conf"
for n in 1 2; do
    port_var=PEER_Q$n
    start_proxy "pp$n" "${!port_var}" 127.0.0.1 "$PGPORT" localhost "$CERTS/db-ca.crt" \
        --config "$PEER_DIR/pp.conf" --peer-id "$n"
    PEER_LOG[pp$n]=$CUR_LOG
done
if start_session peer-h "$PEER_Q1" "SELECT pg_sleep(30)" --proxy-v2 192.0.2.10; then
    KEYS+=("$SESS_KEY")
    raw cancel 127.0.0.1 "$PEER_Q2" "$SESS_BPID" "$SESS_KEY" --proxy-v2 192.0.2.11 \
        >/dev/null
    out=$(peer_outcome peer-h "$SESS_PID" $((10 * IT_TIME_SCALE)))
    CUR_LOG=${PEER_LOG[pp1]}
    expect "h. with --server-proxy-protocol on both, a cancel via instance 2 cancels (57014)" \
        "$out" 'query-end sqlstate=57014'
    expect "h. instance 1 took instance 2's connection with a LOCAL header (no client address)" \
        "$(grep -B3 'event=cancel_peer_received' "${PEER_LOG[pp1]}" | grep 'event=proxy_protocol')" \
        'via=- version=2'
else
    fail "h. session through the PROXY-protocol instance 1" "$(oneline "$(cat "$TMP/peer-h.out")")"
fi
stop_proxy pp1
stop_proxy pp2

# ---- e. no key in any log; --peer-id needs its secret ----
leaked=""
for k in "${KEYS[@]}"; do
    for n in 1 2 3; do
        grep -qi -- "$k" "${PEER_LOG[$n]}" && leaked+=" instance $n"
    done
done
expect "e. no instance logs a cancel key (${#KEYS[@]} keys checked)" "${leaked:-none}" '^none$'
out=$(timeout -k 5 20 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
    --server-private-key-path "$CERTS/proxy.key" --client-connection-host-or-ip 127.0.0.1 \
    --client-ca-roots-path "$CERTS/db-ca.crt" --peer-id 2 --peer-ca-path "$CERTS/public-ca.crt" \
    2>&1)
expect "e. --peer-id without --peer-secret-file: exit 2 naming it" "rc=$? $out" \
    '^rc=2 .*--peer-id needs --peer-secret-file'
printf 'too-short\n' >"$PEER_DIR/short"
out=$(timeout -k 5 20 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
    --server-private-key-path "$CERTS/proxy.key" --client-connection-host-or-ip 127.0.0.1 \
    --client-ca-roots-path "$CERTS/db-ca.crt" --peer-id 2 --peer-ca-path "$CERTS/public-ca.crt" \
    --peer-secret-file "$PEER_DIR/short" 2>&1)
expect "e. a secret shorter than 32 bytes: exit 2, the file and the fix named" "rc=$? $out" \
    "^rc=2 .*--peer-secret-file $PEER_DIR/short: the secret must be 32 to 4095 bytes"
out=$(timeout -k 5 20 "$PGTP_BIN" --server-certificate-path "$CERTS/proxy.crt" \
    --server-private-key-path "$CERTS/proxy.key" --client-connection-host-or-ip 127.0.0.1 \
    --client-ca-roots-path "$CERTS/db-ca.crt" --config "$PEER_DIR/peers.conf" --peer-id 2 \
    --peer-ca-path "$PEER_DIR/missing.crt" 2>&1)
expect "e. an unreadable --peer-ca-path: exit 2 naming the peer and the file" "rc=$? $out" \
    "^rc=2 .*peer 1 \\(127\\.0\\.0\\.1:$PEER_P1\\): --peer-ca-path: .*missing\\.crt"

for n in 1 2 3; do stop_proxy "peer$n"; done
it_note "peers section: $((SECONDS - PEER_T0)) s"
