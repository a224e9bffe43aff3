"""psycopg2 or psycopg 3 client for tests/integration/auth.sh.

Logs in with the driver's defaults plus the conninfo given (host, port,
user, dbname, sslmode=verify-full, sslrootcert), runs one query and prints
"ok <first column>" or "error sqlstate=<S> message=<text>".

    /usr/bin/python3 psyco.py psycopg2|psycopg CONNINFO SQL

Debian's python3-psycopg2 and python3-psycopg are for /usr/bin/python3 (not
a pyenv python first on PATH). The password comes from PGPASSWORD (libpq
reads it), never argv. Exit status: 0 ok, 1 failed, 2 usage.
"""

import sys


def one_line(text):
    return " ".join(str(text or "").split())


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("psycopg2", "psycopg"):
        print("usage: psyco.py psycopg2|psycopg CONNINFO SQL", file=sys.stderr)
        return 2
    driver, conninfo, query = sys.argv[1:]
    if driver == "psycopg2":
        import psycopg2 as mod

        def state(exc):
            return getattr(exc, "pgcode", None)
    else:
        import psycopg as mod

        def state(exc):
            return getattr(exc, "sqlstate", None)
    try:
        conn = mod.connect(conninfo)
        try:
            cur = conn.cursor()
            cur.execute(query)
            row = cur.fetchone()
            print("ok " + (str(row[0]) if row else "(no rows)"))
        finally:
            conn.close()
    except mod.Error as exc:
        print("error sqlstate=%s message=%s" % (state(exc) or "-", one_line(exc)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
