"""The tutorial's aggregation job (Charmed Apache Spark, "Data stream processing"), for this repository.

Reads the topic with SCRAM-SHA-512 over SASL_PLAINTEXT, takes each event's origin with the
tutorial's UDF (json.loads(value)["origin"]), counts by origin and writes the complete result to
the console every micro-batch. No startingOffsets, as in the tutorial: Spark's default for a
streaming query, `latest`, applies.

Usage: spark-submit --master local[2] --jars ... count_by_origin.py BOOTSTRAP TOPIC
The username and password come from KTA_USERNAME and KTA_PASSWORD (never from the command line).
"""

import json
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, udf

bootstrap, topic = sys.argv[1], sys.argv[2]
username, password = os.environ["KTA_USERNAME"], os.environ["KTA_PASSWORD"]

spark = SparkSession.builder.appName("SparkStreamingKafka").getOrCreate()

lines = (
    spark.readStream.format("kafka")
    .option("kafka.bootstrap.servers", bootstrap)
    .option("kafka.sasl.mechanism", "SCRAM-SHA-512")
    .option("kafka.security.protocol", "SASL_PLAINTEXT")
    .option(
        "kafka.sasl.jaas.config",
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{username}" password="{password}";',
    )
    .option("subscribe", topic)
    .load()
)

get_origin = udf(lambda x: json.loads(x)["origin"])

count = lines.withColumn("origin", get_origin(col("value"))).select("origin").groupBy("origin").count()

query = count.writeStream.outputMode("complete").format("console").start()
query.awaitTermination()
