# Astro Runtime image for Airflow 3.3 (MWAA users: upload dags/, include/ as part of the bundle and
# requirements.txt instead; see README "Deploy").
FROM astrocrpublic.azurecr.io/runtime:3.3-1

# The pmp package (hooks, normalizers, loader, DAG factory) ships in include/ and is installed so
# DAG files and tasks import it the same way everywhere.
COPY --chown=astro:0 pyproject.toml README.md /usr/local/airflow/
COPY --chown=astro:0 include /usr/local/airflow/include
COPY --chown=astro:0 sql /usr/local/airflow/sql
RUN pip install --no-cache-dir --no-deps -e /usr/local/airflow

ENV PMP_CATCHUP=true
