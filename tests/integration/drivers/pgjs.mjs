// A postgres.js client for tests/integration/auth.sh: logs in with the
// driver's default settings plus verify-full's equivalent (ssl: the root
// certificate as the only CA, the host name checked), runs one query and
// prints "ok <first column>" or "error sqlstate=<S> message=<text>".
//
//   PGJS_DIR=<dir with node_modules/postgres> node pgjs.mjs HOST PORT DB USER ROOTCERT SQL [BINDING]
//
// HOST is the name checked in the certificate; the connection goes to
// 127.0.0.1 (the proxy listens on loopback IPv4 only, and "localhost" may
// resolve to ::1 first). The password comes from PGPASSWORD, never argv.
// BINDING, if given, is postgres.js's channel_binding option (its default
// is "prefer"). Exit status: 0 ok, 1 failed, 2 usage.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
if (args.length < 6 || args.length > 7 || !process.env.PGJS_DIR) {
  console.error('usage: PGJS_DIR=DIR node pgjs.mjs HOST PORT DB USER ROOTCERT SQL [BINDING]')
  process.exit(2)
}
const [host, port, database, user, rootcert, query, binding] = args
const entry = join(process.env.PGJS_DIR, 'node_modules', 'postgres', 'src', 'index.js')
const { default: postgres } = await import(pathToFileURL(entry).href)

const oneLine = (s) => String(s ?? '').replace(/[\r\n\t]+/g, ' ')
const options = {
  host: '127.0.0.1',
  port: Number(port),
  database,
  username: user,
  password: process.env.PGPASSWORD,
  ssl: { ca: readFileSync(rootcert, 'utf8'), servername: host, rejectUnauthorized: true },
  max: 1,
  connect_timeout: 20,
  onnotice: () => {}
}
if (binding) options.channel_binding = binding
const sql = postgres(options)
let rc = 0
try {
  const rows = await sql.unsafe(query).values()
  console.log(rows.length ? 'ok ' + rows[0][0] : 'ok (no rows)')
} catch (e) {
  console.log('error sqlstate=' + (/^[0-9A-Z]{5}$/.test(e.code ?? '') ? e.code : '-') +
    ' message=' + oneLine(e.message) + (e.hint ? ' hint=' + oneLine(e.hint) : ''))
  rc = 1
}
await sql.end({ timeout: 5 }).catch(() => {})
process.exit(rc)
