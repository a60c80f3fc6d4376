"""Waits on a Spark driver's log (console output and log lines together), for scripts/tutorial
and tests/tutorial: every wait is for a condition, bounded by a timeout.

  spark_log.py started LOG SOURCES TIMEOUT
      until SOURCES Kafka sources have logged `Initial offsets` (their reading has begun)
  spark_log.py counting LOG TIMEOUT
      until a console batch shows a count above zero (events are reaching the job)
  spark_log.py caught-up LOG SINCE QUERIES TIMEOUT
      until each of QUERIES streaming queries has reported a batch that began after SINCE
      (seconds since the epoch: when the producers were done) and whose every source had read to
      the latest offset it saw then: the end of the topic
  spark_log.py progress LOG
      one line per progress report: LINE BATCH END_SUM LATEST_SUM (the line where it ends)

Exit 0 when the condition holds, 1 with a line on stderr when the timeout passed first or the
job exited (`Traceback`/`StreamingQueryException` in the log).
"""

import datetime
import json
import sys
import time

MARK_INITIAL = "KafkaMicroBatchStream: Initial offsets: "
MARK_PROGRESS = "Streaming query made progress: "


def lines_of(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def progress_reports(lines):
    """(last line number, report) for every complete progress report."""
    i = 0
    while i < len(lines):
        at = lines[i].find(MARK_PROGRESS)
        if at < 0:
            i += 1
            continue
        text = lines[i][at + len(MARK_PROGRESS):]
        for j in range(i + 1, min(i + 1000, len(lines) + 1)):
            try:
                yield j, json.loads(text)
                i = j
                break
            except json.JSONDecodeError:
                if j < len(lines):
                    text += "\n" + lines[j]
        else:
            i += 1


def offsets_sum(offsets):
    return sum(sum(p.values()) for p in (offsets or {}).values())


def at_latest(report):
    sources = report.get("sources") or []
    return bool(sources) and all(
        s.get("endOffset") is not None and s.get("endOffset") == s.get("latestOffset") for s in sources
    )


def failed(lines):
    return any("Traceback (most recent call last)" in l or "StreamingQueryException" in l for l in lines)


def wait(timeout, what, check, path):
    deadline = time.monotonic() + timeout
    while True:
        lines = lines_of(path)
        if check(lines):
            return 0
        if failed(lines):
            print(f"spark_log: the Spark job failed while waiting for {what}: see {path}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(f"spark_log: no {what} in {path} within {timeout} s", file=sys.stderr)
            return 1
        time.sleep(1)


def last_batch(path):
    """(origin, count) of the last console batch in the file."""
    rows = []
    for line in lines_of(path):
        if line.startswith("Batch: "):
            rows = []
        elif line.startswith("|") and line.endswith("|"):
            cells = line.split("|")
            if len(cells) == 4 and cells[2].strip().isdigit():
                rows.append((cells[1].strip(), int(cells[2])))
    return rows


def main(argv):
    command, path = argv[1], argv[2]
    if command == "started":
        sources, timeout = int(argv[3]), float(argv[4])
        return wait(timeout, f"'Initial offsets' of {sources} sources",
                    lambda ls: sum(MARK_INITIAL in l for l in ls) >= sources, path)
    if command == "counting":
        timeout = float(argv[3])

        def counting(ls):
            return any(l.startswith("|") and l.rstrip("|").rsplit("|", 1)[-1].strip().isdigit()
                       and int(l.rstrip("|").rsplit("|", 1)[-1]) > 0 for l in ls)

        return wait(timeout, "batch with a count above zero", counting, path)
    if command == "caught-up":
        since, queries, timeout = float(argv[3]), int(argv[4]), float(argv[5])

        def began(report):
            stamp = datetime.datetime.fromisoformat(report["timestamp"].replace("Z", "+00:00"))
            return stamp.timestamp() > since

        def caught_up(ls):
            done = {r["id"] for _, r in progress_reports(ls) if began(r) and at_latest(r)}
            return len(done) >= queries

        return wait(timeout, f"batch of each of {queries} queries at the end of the topic", caught_up, path)
    if command == "progress":
        for end, r in progress_reports(lines_of(path)):
            sources = r.get("sources") or []
            print(end, r.get("batchId"), sum(offsets_sum(s.get("endOffset")) for s in sources),
                  sum(offsets_sum(s.get("latestOffset")) for s in sources))
        return 0
    print(f"spark_log: unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
