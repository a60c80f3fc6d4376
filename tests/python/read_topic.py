"""Independent reader: kafka-python reads every record of a topic, checks each value has the
original client's exact byte shape, and prints the count by origin as the tutorial's Spark job
computes it (json.loads(value)["origin"], groupBy origin, count).

Usage: read_topic.py BOOTSTRAP TOPIC EXPECTED_COUNT
Exit 0 and a JSON object {origin: count} on stdout; exit 1 with the offending value otherwise.
"""

import collections
import json
import re
import sys

from kafka import KafkaConsumer

bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    consumer_timeout_ms=30000,
)
counts = collections.Counter()
seen = 0
for record in consumer:
    value = record.value
    event = json.loads(value)
    # Same keys, same order, same separators, same float repr: re-serialising with the
    # original's json.dumps gives back exactly the bytes on the wire.
    if list(event) != ["timestamp", "_id", "origin", "content"]:
        sys.exit(f"wrong keys: {value!r}")
    if json.dumps(event).encode() != value:
        sys.exit(f"not json.dumps bytes: {value!r}")
    if not isinstance(event["timestamp"], float) or round(event["timestamp"], 6) != event["timestamp"]:
        sys.exit(f"timestamp is not a microsecond float: {value!r}")
    if not re.fullmatch(r"[0-9a-f]{32}", event["_id"]):
        sys.exit(f"bad _id: {value!r}")
    if not re.fullmatch(r"Message #(0|[1-9][0-9]*)", event["content"]):
        sys.exit(f"bad content: {value!r}")
    if record.key is not None:
        sys.exit(f"record has a key: {record.key!r}")
    counts[json.loads(value)["origin"]] += 1
    seen += 1
    if seen == expected:
        break
consumer.close()
if seen != expected:
    sys.exit(f"read {seen} records, expected {expected}")
print(json.dumps(counts))
