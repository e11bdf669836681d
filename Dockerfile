# Astro Runtime image for Airflow 3.3 (MWAA users: upload dags/, the pmp package, requirements.txt and
# the pmp_bulk wheel in plugins.zip instead; see README "Deploy").

# The Rust bulk processor: one abi3 wheel (CPython >= 3.11) built with maturin.
FROM rust:1-bookworm AS rust-wheel
RUN pip3 install --break-system-packages --no-cache-dir "maturin>=1.7,<2" 2>/dev/null \
    || (apt-get update && apt-get install -y --no-install-recommends python3-pip \
        && pip3 install --break-system-packages --no-cache-dir "maturin>=1.7,<2")
COPY rust_operators /src/rust_operators
RUN maturin build --release --locked -m /src/rust_operators/Cargo.toml -o /wheels

FROM astrocrpublic.azurecr.io/runtime:3.3-1

# The pmp package (hooks, normalizers, loader, DAG factory) ships in include/ and is installed so
# DAG files and tasks import it the same way everywhere.
COPY --chown=astro:0 pyproject.toml README.md /usr/local/airflow/
COPY --chown=astro:0 include /usr/local/airflow/include
COPY --chown=astro:0 sql /usr/local/airflow/sql
COPY --from=rust-wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps -e /usr/local/airflow && pip install --no-cache-dir /tmp/wheels/pmp_bulk-*.whl

ENV PMP_CATCHUP=true
