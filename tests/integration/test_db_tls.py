"""PostgreSQL over TLS (docs/operations.md, "Kafka and PostgreSQL over TLS and SASL"):
DATABASE_URL is handed to libpq as it is (PQconnectdbParams with expand_dbname, common/src/db.c),
so sslmode, sslrootcert, sslcert and sslkey in it apply to every connection a service opens -
the request pool, the outbox publisher's session, the sweeper's and the migrations'.

A private cluster gets ssl=on with a server certificate for 127.0.0.1 signed by a CA made here
(openssl). room-service with ?sslmode=verify-full&sslrootcert=<that CA> works and every backend
of it is encrypted (pg_stat_ssl); with another CA it never connects (the certificate is really
checked, not merely requested).
"""
import os
import shutil
import subprocess

import pytest
import requests

from harness import Postgres, bearer, create_room, db_query, forge_token, wait_until

PSQL = "/usr/lib/postgresql/15/bin/psql"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt", cwd=d)
    return os.path.join(d, f"{name}.crt")


@pytest.fixture(scope="module")
def tls(stack):
    """(the private cluster with ssl=on, the CA's certificate, another CA's certificate)"""
    d = os.path.join(stack.workdir, "tls")
    os.makedirs(d, exist_ok=True)
    ca = make_ca(d, "ca")
    other = make_ca(d, "other-ca")
    with open(os.path.join(d, "san.cnf"), "w", encoding="utf-8") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            "server.key", "-out", "server.csr", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.crt", cwd=d)

    pg = Postgres(os.path.join(stack.workdir, "pg-tls"))
    pg.start()
    try:
        for name in ("server.crt", "server.key"):   # the server wants its key private
            target = os.path.join(pg.dir, name)
            shutil.copy(os.path.join(d, name), target)
            shutil.chown(target, "postgres", "postgres")
            os.chmod(target, 0o600)
        subprocess.run(["runuser", "-u", "postgres", "--", PSQL, "-X", "-q", "-h", pg.dir,
                        "-p", str(pg.port), "-d", "postgres", "-v", "ON_ERROR_STOP=1",
                        "-c", "ALTER SYSTEM SET ssl = on",
                        "-c", "SELECT pg_reload_conf()"],
                       check=True, capture_output=True, timeout=30, cwd="/")
        wait_until(lambda: db_query(pg, "room_db", "SHOW ssl") == [("on",)], timeout=10,
                   what="ssl on")
        yield pg, ca, other
    finally:
        pg.stop()


def test_service_connects_with_verify_full_and_every_backend_is_encrypted(stack, tls):
    pg, ca, _ = tls
    url = f"{pg.dsn('room_db')}?sslmode=verify-full&sslrootcert={ca}"
    svc = stack.room_service(tag="room-tls", DATABASE_URL=url, KAFKA_BROKER_URL="127.0.0.1:1",
                             SWEEP_INTERVAL_SECONDS="1")
    svc.start()
    admin = bearer(forge_token(1, email="tls-admin@example.com", role="admin"))
    room = create_room(svc.url, admin)
    r = requests.get(f"{svc.url}/rooms/{room['id']}", headers=admin, timeout=10)
    assert r.status_code == 200, r.text

    def backends():
        return db_query(pg, "room_db",
                        "SELECT s.ssl, s.version FROM pg_stat_activity a "
                        "JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'room-service'")
    # Request connections and the outbox publisher's own session (the sweeper's too).
    rows = wait_until(lambda: len(backends()) >= 2 and backends(), timeout=10,
                      what="room-service's sessions")
    assert all(ssl for ssl, _ in rows), rows
    assert all(version and version.startswith("TLS") for _, version in rows), rows
    assert svc.stop() == 0


def test_service_refuses_a_server_its_ca_did_not_sign(stack, tls):
    pg, _, other = tls
    url = f"{pg.dsn('room_db')}?sslmode=verify-full&sslrootcert={other}"
    svc = stack.room_service(tag="room-tls-other-ca", DATABASE_URL=url,
                             KAFKA_BROKER_URL="127.0.0.1:1")
    svc.start(wait_ready=False)
    wait_until(lambda: "certificate verify failed" in svc.log_text(), timeout=15,
               what="the certificate refused")
    assert requests.get(f"{svc.url}/ready", timeout=5).status_code == 503
    assert svc.stop() == 0
