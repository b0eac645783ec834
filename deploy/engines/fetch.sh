#!/usr/bin/env bash
# Fetch and build what the Flink and Spark runs need, idempotently, into a cache
# outside the checkout (PAIRCURATE_ENGINES, default ~/.cache/paircurate/engines):
#   spark-$PYSPARK_VERSION/      a virtualenv with pyspark (Spark's jars and bin/spark-class)
#   flink-$FLINK_VERSION/        a virtualenv with apache-flink and apache-flink-libraries,
#                                installed --no-deps (they pin an old Beam)
#   gcs-emulator-$GCS_EMULATOR_VERSION/  a virtualenv with gcp-storage-emulator
#   jobservers/*.jar             Beam's Flink and Spark job servers, shaded by pom.xml
#                                from the runner artifacts Maven Central serves
# Writes their paths to engines.env there and prints the cache folder on its last line. `fetch.sh --probe` asks Maven for
# the artifacts a job server could come from and says which are served.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache="${PAIRCURATE_ENGINES:-$HOME/.cache/paircurate/engines}"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
mkdir -p "$cache/jobservers"

probe() {
  local versions=("2.77.0" "2.76.0" "$BEAM_JAVA_VERSION" "$BEAM_JOB_SERVICE_VERSION")
  local artifacts=(beam-runners-flink-1.19-job-server beam-runners-flink-1.20-job-server
    beam-runners-flink-2.0-job-server beam-runners-spark-3-job-server beam-runners-flink-1.19
    beam-runners-flink-1.20 beam-runners-spark-3 beam-runners-java-job-service)
  for version in "${versions[@]}"; do
    for artifact in "${artifacts[@]}"; do
      if mvn -B -q dependency:get -Dtransitive=false \
        -Dartifact="org.apache.beam:$artifact:$version" >/dev/null 2>&1; then
        echo "served      org.apache.beam:$artifact:$version"
      else
        echo "not served  org.apache.beam:$artifact:$version"
      fi
    done
  done
}

venv_with() {  # venv_with FOLDER PIP-ARGS...
  local folder="$1"; shift
  [ -f "$folder/.installed" ] && return
  rm -rf "$folder"
  "$python" -m venv "$folder"
  "$folder/bin/pip" install --quiet --disable-pip-version-check "$@"
  touch "$folder/.installed"
}

job_server() {  # job_server PROFILE JAR [MAVEN ARGS...]
  local profile="$1" jar="$2"; shift 2
  [ -f "$jar" ] && return
  mvn -B -q -f "$here/pom.xml" -P "$profile" package \
    -Dbeam.version="$BEAM_JAVA_VERSION" -Dbeam.job.service.version="$BEAM_JOB_SERVICE_VERSION" \
    -Djobserver.build="$cache/maven-build/$profile" -Djobserver.jar="$jar.partial" "$@"
  mv "$jar.partial" "$jar"
}

if [ "${1:-}" = "--probe" ]; then probe; exit; fi
command -v java >/dev/null || { echo "fetch.sh: no java on PATH (Java 17 runs both engines)" >&2; exit 1; }
command -v mvn >/dev/null || { echo "fetch.sh: no mvn on PATH (Maven fetches Beam's runners)" >&2; exit 1; }

spark_env="$cache/spark-$PYSPARK_VERSION"
flink_env="$cache/flink-$FLINK_VERSION"
venv_with "$spark_env" --no-deps "pyspark==$PYSPARK_VERSION"
venv_with "$flink_env" --no-deps "apache-flink==$FLINK_VERSION" "apache-flink-libraries==$FLINK_VERSION"
# A GCS emulator with the JSON API's batch requests, which Beam's gs:// renames use.
venv_with "$cache/gcs-emulator-$GCS_EMULATOR_VERSION" "gcp-storage-emulator==$GCS_EMULATOR_VERSION"

# The jars are named for the pom that built them, so that a changed pom builds new ones.
build="$(sha256sum "$here/pom.xml" | cut -c1-8)"
flink_jar="$cache/jobservers/beam-runners-flink-$FLINK_BEAM_VERSION-job-server-$BEAM_JAVA_VERSION-$build.jar"
spark_jar="$cache/jobservers/beam-runners-spark-3-job-server-$BEAM_JAVA_VERSION-pyspark-$PYSPARK_VERSION-$build.jar"
job_server flink "$flink_jar"
# The Spark job server runs with the jars of the Spark it drives, named in its manifest.
spark_home="$("$spark_env/bin/python" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("pyspark").origin))')"
spark_classpath="$(ls "$spark_home"/jars/*.jar | sed 's|^|file:|' | tr '\n' ' ')"
job_server spark "$spark_jar" -Dspark.classpath="$spark_classpath"
cat > "$cache/engines.env" <<ENV
SPARK_HOME=$spark_home
FLINK_HOME=$("$flink_env/bin/python" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("pyflink").origin))')
FLINK_JOB_SERVER=$flink_jar
SPARK_JOB_SERVER=$spark_jar
GCS_EMULATOR=$cache/gcs-emulator-$GCS_EMULATOR_VERSION/bin/gcp-storage-emulator
ENV
echo "$cache"
