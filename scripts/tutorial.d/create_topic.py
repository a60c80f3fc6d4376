"""Creates a topic as the cluster's admin (kafka-python, the tests' own client), for the Spark job
to start on: a Kafka source cannot start on a topic that does not exist.

Usage: KTA_ADMIN_PASSWORD=… create_topic.py BOOTSTRAP TOPIC PARTITIONS REPLICATION_FACTOR
"""

import os
import sys

from kafka.admin import KafkaAdminClient, NewTopic

bootstrap, topic, partitions, replication = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
admin = KafkaAdminClient(
    bootstrap_servers=bootstrap.split(","),
    security_protocol="SASL_PLAINTEXT",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_plain_username="admin",
    sasl_plain_password=os.environ["KTA_ADMIN_PASSWORD"],
)
admin.create_topics([NewTopic(topic, partitions, replication)])
admin.close()
