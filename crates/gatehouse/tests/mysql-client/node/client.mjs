// node's mysql2 through the gateway, for Gatehouse's MySQL tests.
//
//   node client.mjs --port P --user U --database DB --ssl-ca CA [--execute] QUERY...
//
// The password comes from MYSQL_PWD. Connects once over TLS (the CA
// verified), then runs each QUERY in turn: with --execute as a prepared
// statement (connection.execute: COM_STMT_PREPARE/EXECUTE, binary rows),
// else as a query (connection.query: COM_QUERY, text rows). A QUERY written
// "SQL ::: [params]" binds those parameters. Prints each row as a JSON
// array, {"affected_rows": N} for a statement without rows, and for an
// error {"errno", "sqlstate", "msg"} and exits 1.
import fs from "node:fs";
import mysql from "mysql2/promise";

const args = process.argv.slice(2);
const opt = { host: "127.0.0.1", port: 3306, execute: false, queries: [] };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--port") opt.port = Number(args[++i]);
  else if (a === "--host") opt.host = args[++i];
  else if (a === "--user") opt.user = args[++i];
  else if (a === "--database") opt.database = args[++i];
  else if (a === "--ssl-ca") opt.ca = args[++i];
  else if (a === "--execute") opt.execute = true;
  else opt.queries.push(a);
}

const emit = (v) => process.stdout.write(JSON.stringify(v) + "\n");
const fail = (e) => {
  emit({ errno: e.errno ?? null, sqlstate: e.sqlState ?? null, msg: String(e.message) });
  process.exit(1);
};

let conn;
try {
  conn = await mysql.createConnection({
    host: opt.host,
    port: opt.port,
    user: opt.user,
    password: process.env.MYSQL_PWD ?? "",
    database: opt.database,
    ssl: { ca: fs.readFileSync(opt.ca, "utf8"), servername: "localhost" },
    // The gateway asks for the token with mysql_clear_password (over TLS).
    authPlugins: {
      mysql_clear_password: () => () => Buffer.from((process.env.MYSQL_PWD ?? "") + "\0"),
    },
    rowsAsArray: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
} catch (e) {
  fail(e);
}
for (const q of opt.queries) {
  let [sql, params] = q.includes(" ::: ") ? q.split(" ::: ") : [q, null];
  params = params === null ? undefined : JSON.parse(params);
  try {
    const [rows] = opt.execute ? await conn.execute(sql, params) : await conn.query(sql, params);
    if (Array.isArray(rows)) for (const r of rows) emit(r);
    else emit({ affected_rows: rows.affectedRows });
  } catch (e) {
    fail(e);
  }
}
await conn.end();
