"""Three wrong versions of the tutorial's job, as one Spark application (one JVM for the three):
each query writes every batch of its complete count by origin, as the console sink prints it,
to a file of its own in OUT_DIR.

  filter  drops the events of one origin (FILTERED)
  assign  reads only partitions 0, 1 and 2 of the topic (`assign` instead of `subscribe`)
  union   reads the topic twice and counts the union (every event twice)

Usage: spark-submit … wrong_jobs.py BOOTSTRAP TOPIC FILTERED OUT_DIR  (credentials: KTA_USERNAME,
KTA_PASSWORD, as count_by_origin.py)
"""

import json
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql.functions import col, udf

bootstrap, topic, filtered, out_dir = sys.argv[1:5]
username, password = os.environ["KTA_USERNAME"], os.environ["KTA_PASSWORD"]
spark = SparkSession.builder.appName("WrongJobs").getOrCreate()
get_origin = udf(lambda x: json.loads(x)["origin"])


def read(**subscription):
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("kafka.sasl.mechanism", "SCRAM-SHA-512")
        .option("kafka.security.protocol", "SASL_PLAINTEXT")
        .option(
            "kafka.sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{username}" password="{password}";',
        )
    )
    for key, value in subscription.items():
        reader = reader.option(key, value)
    return reader.load().withColumn("origin", get_origin(col("value"))).select("origin")


def console_file(name):
    """A foreachBatch sink printing as Spark's console sink does, into OUT_DIR/NAME.txt."""
    path = os.path.join(out_dir, f"{name}.txt")

    def write(df, batch):
        table = df._jdf.showString(20, 20, False)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"-------------------------------------------\nBatch: {batch}\n"
                    f"-------------------------------------------\n{table}\n")

    return write


jobs = {
    "filter": read(subscribe=topic).where(col("origin") != filtered),
    "assign": read(assign=json.dumps({topic: [0, 1, 2]})),
    "union": read(subscribe=topic).union(read(subscribe=topic)),
}
for name, events in jobs.items():
    (events.groupBy("origin").count().writeStream.outputMode("complete")
     .foreachBatch(console_file(name)).queryName(name).start())
spark.streams.awaitAnyTermination()
