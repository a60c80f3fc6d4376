import json, sys
from kafka import KafkaConsumer, TopicPartition
servers, topic, out = sys.argv[1:4]
c = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, consumer_timeout_ms=5000)
parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
c.assign(parts); c.seek_to_beginning(*parts)
end = c.end_offsets(parts)
rows = []
while any(c.position(p) < end[p] for p in parts):
    for tp, msgs in c.poll(timeout_ms=2000).items():
        for m in msgs:
            run = dict(m.headers).get("kta-run")
            rows.append({"partition": m.partition, "offset": m.offset,
                         "run": run.decode() if run is not None else None,
                         "value": m.value.decode()})
rows.sort(key=lambda r: (r["partition"], r["offset"]))
with open(out, "w") as f:
    for r in rows: f.write(json.dumps(r, separators=(",", ":")) + "\n")
print(len(rows))
