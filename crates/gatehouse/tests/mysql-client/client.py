"""A MySQL/MariaDB client library for the MySQL tests: PyMySQL (pure Python)
MySQL Connector/Python (Oracle's, run as pure Python) or mysqlclient
(MySQLdb on libmariadb: Debian's python3-mysqldb, so run with the system's
python3 for --driver mysqldb), straight to a server or through the gateway.

    client.py [--host H] [--port P] --user U [--password PW] [--database DB]
              [--ssl-ca CA | --ssl | --no-ssl] [--driver pymysql|connector]
              [--cleartext] [--columns] [--multi] [--prepared] [QUERY ...]

Connects once (autocommit on, utf8mb4), then runs each QUERY in turn; with
no QUERY, each non-empty line of standard input is one. A QUERY written
"SQL ::: [1, \"x\"]" runs SQL with those parameters (with --prepared and
--driver connector, as a server-side prepared statement: COM_STMT_PREPARE,
COM_STMT_EXECUTE and binary rows). Prints, as JSON
lines on standard output:
  - each row of a result set as an array (with --columns, the column names
    first, as {"columns": [...]});
  - for a statement without a result set, {"affected_rows": N};
  - for an error, connecting or in a query, {"errno": N, "sqlstate": "…",
    "msg": "…", "type": "<exception class>"} (errno and sqlstate null where
    the driver has none), and then exits 1 without running the rest.

TLS: --ssl-ca verifies the server's certificate against CA and its name
against --host; --ssl encrypts without verifying (connector: when the
server offers TLS); --no-ssl never encrypts; none of them: each driver's
default, TLS without verification when the server offers it.
--cleartext (connector): authenticate with mysql_clear_password from the
first packet, sending the password as it is (the driver does so over TLS
only). Both drivers also answer a server's switch to mysql_clear_password
(PyMySQL even without TLS). PyMySQL answers MariaDB's client_ed25519 (with
PyNaCl); Connector/Python cannot ("Authentication plugin 'client_ed25519'
is not supported"). The password may come from MYSQL_PWD instead of
--password.
"""
import argparse
import datetime
import decimal
import json
import os
import ssl
import sys


def to_json(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (datetime.timedelta,)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def emit(obj):
    print(json.dumps(obj, default=to_json, ensure_ascii=False), flush=True)


def connect_pymysql(args, password):
    import pymysql
    import pymysql.constants.CLIENT

    tls = {}
    if args.ssl_ca:
        tls = {"ssl_ca": args.ssl_ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    elif args.ssl:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        tls = {"ssl": ctx}
    elif args.no_ssl:
        tls = {"ssl_disabled": True}
    return pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=password,
        database=args.database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=10,
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS if args.multi else 0,
        **tls,
    )


def connect_connector(args, password):
    import mysql.connector

    opts = {}
    if args.ssl_ca:
        opts = {"ssl_ca": args.ssl_ca, "ssl_verify_cert": True, "ssl_verify_identity": True}
    elif args.ssl:
        opts = {"ssl_disabled": False}
    elif args.no_ssl:
        opts = {"ssl_disabled": True}
    if args.cleartext:
        opts["auth_plugin"] = "mysql_clear_password"
    if args.multi:
        opts["client_flags"] = [mysql.connector.constants.ClientFlag.MULTI_STATEMENTS]
    if args.database:
        opts["database"] = args.database
    return mysql.connector.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=password,
        charset="utf8mb4",
        collation="utf8mb4_general_ci",
        autocommit=True,
        connection_timeout=10,
        use_pure=True,
        **opts,
    )


def connect_mysqldb(args, password):
    # mysqlclient (MySQLdb, on libmariadb): Debian's python3-mysqldb, so run
    # this script with the system's python3 for it.
    import MySQLdb

    opts = {}
    if args.ssl_ca:
        opts["ssl"] = {"ca": args.ssl_ca}
    if args.database:
        opts["db"] = args.database
    return MySQLdb.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        passwd=password,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=10,
        **opts,
    )


def error(e):
    errno = getattr(e, "errno", None)
    sqlstate = getattr(e, "sqlstate", None)
    msg = getattr(e, "msg", None)
    if errno is None and len(getattr(e, "args", ())) >= 2 and isinstance(e.args[0], int):
        errno, msg = e.args[0], e.args[1]
    if errno == -1:
        errno = None
    emit({"errno": errno, "sqlstate": sqlstate, "msg": str(msg if msg is not None else e), "type": type(e).__name__})
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", required=True)
    p.add_argument("--password")
    p.add_argument("--database")
    tls = p.add_mutually_exclusive_group()
    tls.add_argument("--ssl-ca")
    tls.add_argument("--ssl", action="store_true")
    tls.add_argument("--no-ssl", action="store_true")
    p.add_argument("--driver", choices=["pymysql", "connector", "mysqldb"], default="pymysql")
    p.add_argument("--cleartext", action="store_true")
    p.add_argument("--columns", action="store_true")
    p.add_argument("--multi", action="store_true", help="ask for multi-statements (CLIENT_MULTI_STATEMENTS)")
    p.add_argument("--prepared", action="store_true", help="connector: server-side prepared statements (binary protocol)")
    p.add_argument("queries", nargs="*", metavar="QUERY")
    args = p.parse_args()
    password = args.password if args.password is not None else os.environ.get("MYSQL_PWD", "")
    queries = args.queries or [line for line in sys.stdin.read().splitlines() if line.strip()]

    try:
        if args.driver == "pymysql":
            conn = connect_pymysql(args, password)
        elif args.driver == "mysqldb":
            conn = connect_mysqldb(args, password)
        else:
            conn = connect_connector(args, password)
    except Exception as e:  # the driver's own errors and the socket's
        return error(e)
    try:
        cur = conn.cursor(prepared=True) if args.prepared else conn.cursor()
        for q in queries:
            # "SQL ::: [params]" runs SQL with parameters (a JSON array).
            params = None
            if " ::: " in q:
                q, raw = q.split(" ::: ", 1)
                params = json.loads(raw)
            try:
                cur.execute(q, params) if params is not None else cur.execute(q)
                if cur.description is None:
                    emit({"affected_rows": cur.rowcount})
                    continue
                if args.columns:
                    emit({"columns": [d[0] for d in cur.description]})
                for row in cur.fetchall():
                    emit(list(row))
            except Exception as e:
                return error(e)
        return 0
    finally:
        try:
            conn.close()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
