"""What Airflow needs from the pipeline: the business date of a run, the wait for the
day's exports, settings completed from Airflow Connections, and the task bodies the DAG
files in dags/ call. Nothing here imports Airflow at module level: the CLI and the
tests run without it, and the DAG files parse fast."""
