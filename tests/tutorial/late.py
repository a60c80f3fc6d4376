"""The tutorial's job started late: the Spark session is made first (the slow part of starting),
then count_by_origin.py runs unchanged once GO_FILE exists (the test creates it while the
producers are sending), so its query begins some seconds into the producers' run.

Usage: spark-submit … late.py GO_FILE TIMEOUT COUNT_BY_ORIGIN BOOTSTRAP TOPIC
"""

import os
import runpy
import sys
import time

from pyspark.sql import SparkSession

go_file, timeout, job = sys.argv[1], float(sys.argv[2]), sys.argv[3]
SparkSession.builder.appName("SparkStreamingKafka").getOrCreate()
print("late.py: session ready", flush=True)
deadline = time.monotonic() + timeout
while not os.path.exists(go_file):
    if time.monotonic() > deadline:
        sys.exit(f"late.py: {go_file} did not appear within {timeout} s")
    time.sleep(0.2)
sys.argv = [job] + sys.argv[4:]
runpy.run_path(job, run_name="__main__")
