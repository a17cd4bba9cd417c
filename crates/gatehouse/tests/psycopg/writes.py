"""Writes through the gateway with psycopg 3 (libpq, server-side binding),
for tests/row_cap.rs: each case prints one JSON line with what happened.

The connection comes from the PG* environment the test sets.
"""

import json

import psycopg


def attempt(name, conn, sql, params=None):
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            print(json.dumps({"case": name, "ok": True, "rowcount": cur.rowcount}))
    except psycopg.Error as e:
        print(json.dumps({
            "case": name,
            "ok": False,
            "sqlstate": e.sqlstate,
            "message": str(e.diag.message_primary),
        }))


with psycopg.connect("", autocommit=True) as conn:
    # A WHERE that is always true is held for approval like no WHERE.
    attempt("where_true", conn, "DELETE FROM orders WHERE true")
    attempt("where_or_true", conn, "UPDATE orders SET note = 'x' WHERE id IS NOT NULL OR true")
    # Parameters bound server-side: the extended protocol, capped.
    attempt("over_cap", conn, "DELETE FROM orders WHERE id > %s", (0,))
    attempt("within_cap", conn, "UPDATE orders SET note = %s WHERE id <= %s", ("p", 10))

# psycopg's default: every statement in a transaction it opens.
with psycopg.connect("") as conn:
    attempt("tx_within", conn, "UPDATE orders SET note = %s WHERE id <= %s", ("q", 5))
    attempt("tx_over", conn, "DELETE FROM orders WHERE id > %s", (0,))
    attempt("tx_after", conn, "SELECT 1")
    conn.rollback()
