# Sourced by scripts/tutorial and tests/tutorial: how this machine runs the tutorial's Spark.
# Needs SPARK (the cache directory of scripts/install-test-deps) set. Sets SPARK_SUBMIT, PY (the
# venv's python) and SPARK_ARGS (local[2], the connector's jars).
PY="$SPARK/venv/bin/python"
SPARK_SUBMIT="$SPARK/venv/bin/spark-submit"
# pyspark's launcher finds Spark's home with whatever python3 is first on PATH: point it at the venv.
SPARK_HOME="$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')"
export SPARK_HOME
export PYSPARK_PYTHON="$PY"
# Else Spark binds the machine's first interface's address.
export SPARK_LOCAL_IP=127.0.0.1
jars="$(ls "$SPARK"/jars/*.jar | paste -sd, -)"
# spark.sql.shuffle.partitions: the job's groupBy keeps its state in this many stores; Spark's 200
# made the first batch take 80 s on 2 busy cores. The job's code is the tutorial's either way.
SPARK_ARGS=(--master 'local[2]' --jars "$jars" --conf spark.sql.shuffle.partitions=4
    --conf spark.ui.enabled=false)
