"""Run landing.sql with PyFlink (Apache Flink 2.2, local mode): Kafka -> Parquet.

    pip install 'apache-flink==2.2.*'        # or: pip install '.[warehouse]'
    python deploy/warehouse/landing.py --bootstrap localhost:9092 \\
        --registry http://localhost:8081 --warehouse /data/sequence

runs until stopped, committing Parquet files at each checkpoint. With
``--until-latest`` it reads each topic up to the offsets it finds at start and
ends by itself (the demo and the tests run it so). On a Flink cluster, submit
the same SQL with the SQL client or ``flink run --python``; the jars below go
to its lib/ directory.

The connector and format jars come from Maven Central by the coordinates in
pom.xml beside this file, once, into ~/.cache/sequence-connector/flink/<v>/
(``--jars DIR`` uses a directory of your own). Needs Java 11+ and, for the
fetch, Maven. This file imports nothing from the connector: copy it freely.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
SQL = HERE / "landing.sql"
POM = HERE / "pom.xml"
FLINK_JARS_VERSION = "2.2.0"  # pom.xml's flink.version
# The local JVM: a small heap suffices (Parquet row groups are the largest
# buffers); C1 only and the serial collector keep a short run's CPU down.
DEFAULT_JVM_ARGS = "-Xmx768m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_LOG4J2 = """\
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
appender.file.name = file
appender.file.type = File
appender.file.fileName = ${sys:log.file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %-5p %c - %m%n
appender.console.name = console
appender.console.type = Console
appender.console.target = SYSTEM_ERR
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = ERROR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = flink: %-5p %c{1} - %m%n
"""


class LandingError(RuntimeError):
    """Java or Maven missing, jars not fetchable, or the job failed: the message says which."""


def cache_dir() -> Path:
    base = os.environ.get("SEQCONN_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sequence-connector")
    return Path(base) / "flink" / FLINK_JARS_VERSION


def unavailable_reason(jars: Path | None = None) -> str | None:
    """Why the job cannot run here, or None (``jars``: a directory of your own)."""
    try:
        import pyflink  # noqa: F401
    except ImportError:
        return "PyFlink is not installed (pip install '.[warehouse]')"
    if shutil.which("java") is None:
        return "no `java` on PATH (Flink 2.2 needs Java 11, 17 or 21)"
    if jars is None and not (cache_dir() / ".complete").exists() and shutil.which("mvn") is None:
        return "no `mvn` on PATH to fetch the Flink connector jars, and none are cached"
    return None


def fetch_jars() -> Path:
    """The directory of the job's jars, fetched once per version and user."""
    home = cache_dir()
    if (home / ".complete").exists():
        return home
    if shutil.which("mvn") is None:
        raise LandingError("no `mvn` on PATH to fetch the Flink connector jars")
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f".{FLINK_JARS_VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second run waits, then finds the jars
        if (home / ".complete").exists():
            return home
        done = subprocess.run(  # noqa: S603 - mvn from PATH on purpose, fixed arguments
            ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",  # noqa: S607
             "-DincludeScope=runtime", f"-DoutputDirectory={home}"],
            capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise LandingError(f"mvn could not fetch the Flink jars: {' | '.join(tail)}")
        (home / ".complete").write_text(FLINK_JARS_VERSION)
    return home


def statements(sql: str) -> list[str]:
    """The statements of a SQL script: ``--`` comments dropped, split at ``;``
    (both outside quoted literals)."""
    out: list[str] = []
    current: list[str] = []
    i, quoted = 0, False
    while i < len(sql):
        ch = sql[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and sql.startswith("--", i):
            i = sql.find("\n", i)
            if i < 0:
                break
            continue
        elif not quoted and ch == ";":
            out.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return [s for s in out if s]


def render(values: dict[str, str], sql_path: Path = SQL) -> list[str]:
    return [Template(s).substitute(values) for s in statements(sql_path.read_text())]


def run(bootstrap: str, registry: str, warehouse: str, topic_prefix: str = "sequence",
        until_latest: bool = False, checkpoint_interval: str = "30 s", parallelism: int = 1,
        jars: Path | None = None, log_dir: Path | None = None) -> None:
    jar_dir = jars or fetch_jars()
    if "://" not in warehouse:
        warehouse = Path(warehouse).resolve().as_uri()
    # The gateway JVM reads these when PyFlink starts it (below, on first use).
    logs = log_dir or Path(tempfile.mkdtemp(prefix="flink-log-"))
    logs.mkdir(parents=True, exist_ok=True)
    log4j = logs / "log4j2.properties"
    log4j.write_text(_LOG4J2)
    os.environ.setdefault("JVM_ARGS", DEFAULT_JVM_ARGS)
    os.environ["FLINK_LOG_DIR"] = str(logs)
    os.environ["LOG4J_PROPERTIES"] = str(log4j)

    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = env.get_config()
    conf.set("pipeline.jars", ";".join(p.as_uri() for p in sorted(jar_dir.glob("*.jar"))))
    conf.set("parallelism.default", str(parallelism))
    # event hours (dt, hr) and FROM_UNIXTIME are in UTC whatever the host's zone
    conf.set("table.local-time-zone", "UTC")
    # the filesystem sink commits files only at checkpoints (and at the end of
    # a bounded run, through the final checkpoint)
    conf.set("execution.checkpointing.interval", checkpoint_interval)
    conf.set("pipeline.name", "sequence-warehouse-landing")

    values = {"BOOTSTRAP": bootstrap, "REGISTRY": registry.rstrip("/"),
              "TOPIC_PREFIX": topic_prefix, "WAREHOUSE": warehouse.rstrip("/")}
    inserts = []
    for statement in render(values):
        if re.match(r"INSERT\s", statement, re.IGNORECASE):
            inserts.append(statement)
            continue
        env.execute_sql(statement)
        source = re.match(r"CREATE TABLE (kafka_\w+)", statement)
        if source and until_latest:
            env.execute_sql(f"ALTER TABLE {source.group(1)} "
                            "SET ('scan.bounded.mode' = 'latest-offset')")
    job = env.create_statement_set()
    for statement in inserts:
        job.add_insert_sql(statement)
    # blocks until the job ends: a bounded run at the latest offsets, an
    # unbounded one when it is cancelled or fails
    job.execute().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--registry", required=True, help="schema registry URL")
    parser.add_argument("--warehouse", required=True, help="directory or URI for the Parquet")
    parser.add_argument("--topic-prefix", default="sequence")
    parser.add_argument("--until-latest", action="store_true",
                        help="read up to the offsets found at start, then end")
    parser.add_argument("--checkpoint-interval", default="30 s")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--jars", type=Path, help="a directory of jars instead of the cache")
    parser.add_argument("--log-dir", type=Path, help="where Flink writes its log")
    args = parser.parse_args(argv)
    reason = unavailable_reason(args.jars)
    if reason is not None:
        print(f"landing: cannot run: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    run(args.bootstrap, args.registry, args.warehouse, args.topic_prefix, args.until_latest,
        args.checkpoint_interval, args.parallelism, args.jars, args.log_dir)
    print(f"landing: done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
