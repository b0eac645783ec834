"""cc2dataset 1.5.0 over local WAT files, run by bench/extract.py in cc2dataset's own venv.

cc2dataset's ``process_one_part``, step for step, in its documented local
configuration (``build_spark_session("local", cores, mem_gb)``: PySpark local
mode on every core): one Spark partition per WAT file, its ``process_wat``
(FastWARC and simdjson) in each, ``toDF``, then its
``deduplicate_repartition_count`` (a global dropDuplicates on md5(alt + url),
a random sort, 256 Parquet files, a count read back). The one change: the
file list is given, where ``process_one_part`` prefixes each path with
Common Crawl's bucket and ``cc2dataset()`` first downloads Common Crawl's
index of WAT files, neither reachable here.

Usage: python cc2dataset_run.py OUTPUT CORES MEM_GB FILE...; prints one JSON line.
"""

import json
import sys
import time


def main(argv):
    output, cores, mem_gb, files = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    started = time.perf_counter()
    from cc2dataset.main import deduplicate_repartition_count, process_wat
    from cc2dataset.spark_session_builder import build_spark_session
    from pyspark import SparkContext

    spark = build_spark_session("local", cores, mem_gb)
    context = SparkContext.getOrCreate()
    context.setLogLevel("ERROR")
    paths = context.parallelize(files, len(files))

    def extract(partition):
        for path in list(partition):
            yield from process_wat(path, "image")

    frame = paths.mapPartitions(extract).toDF(["uid", "url", "alt", "cc_filename", "page_url"])
    deduplicate_repartition_count(frame, output, len(files), spark, shuffle=True)
    pairs = spark.read.parquet(output).count()
    spark.stop()
    print(json.dumps({"pairs": pairs, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1:])
