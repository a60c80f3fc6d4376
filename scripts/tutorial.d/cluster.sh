# Sourced by scripts/tutorial and tests/tutorial/run-tests (with ROOT, HERE, KTA_CACHE, say and die
# set): the tutorial's cluster.
#
#   cluster_up KDIR TOPIC   a 3-node Apache Kafka with SCRAM-SHA-512 over SASL_PLAINTEXT and ACLs in
#                           KDIR (down when the calling shell ends); `producer` gets what Charmed
#                           Kafka's relation gives a producer on TOPIC* (the data and the control
#                           topic), `consumer` what the data-integrator's consumer gets (READ on
#                           TOPIC*, READ on the group prefix spark-kafka-source- of Spark's Kafka
#                           source); TOPIC is created with 6 partitions and RF 3. Sets BOOTSTRAP.
#   password USER           the user's password (from KDIR/users, never on a command line)

cluster_up() {
    KDIR="$1" TOPIC="$2"
    # Its admin helper gives a request 5 s: on a loaded machine a fresh cluster may not answer in
    # time (creating the users, a grant). Each is tried up to three times.
    for try in 1 2 3; do
        "$ROOT/scripts/kafka" up --dir "$KDIR" --nodes 3 --auth scram --owner "$$" >"$KDIR-up.log" 2>&1 && break
        "$ROOT/scripts/kafka" down --dir "$KDIR" >/dev/null 2>&1 || true
        ((try < 3)) || die "the Kafka cluster did not start: see $KDIR-up.log"
        say "the Kafka cluster did not start (try $try of 3): $(tail -1 "$KDIR-up.log")"
        rm -rf "${KDIR:?}"
    done
    # Granting twice is harmless.
    grant() {
        local try
        for try in 1 2 3; do
            "$ROOT/scripts/kafka" grant --dir "$KDIR" "$@" >"$KDIR-grant.log" 2>&1 && return 0
            say "grant $1 failed (try $try of 3): $(grep -m1 -o 'TimeoutException.*' "$KDIR-grant.log" || tail -1 "$KDIR-grant.log")"
        done
        die "could not grant $1 its ACLs: see $KDIR-grant.log"
    }
    grant producer producer "$TOPIC*"
    grant consumer consumer "$TOPIC*" spark-kafka-source-
    BOOTSTRAP="$(sed -n 's/^KTA_BOOTSTRAP_SERVERS=//p' "$KDIR/env")"
    password() { awk -v u="$1" '$1 == u { print $2 }' "$KDIR/users"; }
    # The topic, as the tutorial's producers would create it, before the job: a Kafka source cannot
    # start on a topic that does not exist.
    KTA_ADMIN_PASSWORD="$(sed -n 's/^KTA_PASSWORD=//p' "$KDIR/env")" \
        "$KTA_CACHE/test-venv/bin/python" "$HERE/create_topic.py" "$BOOTSTRAP" "$TOPIC" 6 3
}
