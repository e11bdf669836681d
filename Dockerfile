# Astro Runtime 3.3 (Airflow 3.3, Python 3.12): the one and only stage; the Astro CLI reads this
# FROM line as the project's Runtime version.
FROM astrocrpublic.azurecr.io/runtime:3.3-1

# The Runtime image's ONBUILD steps have run at this point: packages.txt (apt; empty: psycopg's
# binary wheel carries libpq), requirements.txt (pip: what the bundle adds to Airflow) and a copy of
# the build context (see .dockerignore) into /usr/local/airflow.
#
# Then the two prebuilt wheels of scripts/package.sh: the pmp package (DAG factory, hooks,
# normalizers, loader; migrations and settings as package data) and the Rust bulk processor
# (abi3, manylinux_2_28). No Rust toolchain and no compilation in the image. Their dependencies
# are requirements.txt, installed above, so pip fetches nothing more here.
RUN pip install --no-cache-dir /usr/local/airflow/dist/wheels/power_market_pipeline-*-py3-none-any.whl \
        /usr/local/airflow/dist/wheels/pmp_bulk-*-cp311-abi3-manylinux_2_28_x86_64.whl \
    && python -c "import pmp, pmp_bulk, pmp.db; print('pmp', pmp.__version__, pmp.db.migrations_dir())"

# History DAGs catch up from each dataset's first day. Deployment environment variables (Astro UI
# or `astro deployment variable create`) override this and set the other PMP_* settings
# (README "Deploy"; dist/mwaa/startup.sh documents every one).
ENV PMP_CATCHUP=true
