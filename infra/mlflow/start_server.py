"""Start `mlflow server` (basic auth, PostgreSQL backend, artifacts proxied to S3/MinIO) from env vars.

Secrets arrive only as environment variables (compose `${VAR:?}` or Kubernetes secretKeyRef); they are
URL-quoted into the store URIs here so a password may hold any character, and never logged.
"""

import os
import sys
import tempfile
import urllib.parse
from pathlib import Path

import psycopg2

REQUIRED = ("POSTGRES_USER", "POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "MLFLOW_S3_ENDPOINT_URL", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if not value:
        sys.exit(f"start_server: environment variable {name} is not set")
    return value


def postgres_uri(database: str) -> str:
    user, password = (urllib.parse.quote(env(k), safe="") for k in ("POSTGRES_USER", "POSTGRES_PASSWORD"))
    host, port = env("POSTGRES_HOST", "postgres"), env("POSTGRES_PORT", "5432")
    return f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{database}"


def ensure_database(name: str) -> None:
    """The auth app keeps its users in their own database (both use an alembic_version table)."""
    conn = psycopg2.connect(host=env("POSTGRES_HOST", "postgres"), port=env("POSTGRES_PORT", "5432"),
                            user=env("POSTGRES_USER"), password=env("POSTGRES_PASSWORD"),
                            dbname=env("POSTGRES_DB", "mlflow"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def main() -> None:
    for name in REQUIRED:
        env(name)
    auth_db = env("MLFLOW_AUTH_DB", "mlflow_auth")
    ensure_database(auth_db)
    template = (Path(__file__).parent / "basic_auth.ini").read_text()
    fd, ini = tempfile.mkstemp(prefix="basic_auth-", suffix=".ini")  # mode 0600
    with os.fdopen(fd, "w") as out:
        out.write(template.replace("@AUTH_DATABASE_URI@", postgres_uri(auth_db).replace("%", "%%")))
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = ini
    os.environ["MLFLOW_BACKEND_STORE_URI"] = postgres_uri(env("POSTGRES_DB", "mlflow"))
    args = ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000",
            "--app-name", "basic-auth",
            "--allowed-hosts", env("MLFLOW_ALLOWED_HOSTS"),
            "--serve-artifacts", "--artifacts-destination", env("MLFLOW_ARTIFACTS_DESTINATION"),
            "--workers", env("MLFLOW_WORKERS", "4")]
    os.execvp(args[0], args)


if __name__ == "__main__":
    main()
