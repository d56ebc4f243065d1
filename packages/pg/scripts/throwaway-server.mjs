#!/usr/bin/env node
// A throwaway PostgreSQL server for tests, the bench and trying @bakery/pg out: initdb into a
// temporary directory, a random free port on 127.0.0.1 and a private unix-socket directory,
// stopped and deleted afterwards. Never touches a system cluster. As root, the server runs as
// the `postgres` user (initdb refuses root).
//
//   node scripts/throwaway-server.mjs      # prints the connection strings, stops on Ctrl-C
//
// Binaries: $PG_BIN, else the newest /usr/lib/postgresql/*/bin (Debian's `postgresql`
// package), else initdb/pg_ctl on PATH.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding initdb and pg_ctl, or null when none is installed. */
export function findPgBin() {
  const candidates = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  try {
    const versions = fs
      .readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch {
    // not Debian's layout
  }
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir) candidates.push(dir);
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl')))
      return dir;
  }
  return null;
}

/** The pgbouncer binary, or null. */
export function findPgbouncer() {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** A TCP port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

function run(cmd, args, opts = {}) {
  const argv = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, [...args]];
  const r = spawnSync(argv[0], argv[1], { encoding: 'utf8', ...opts });
  if (r.status !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`,
    );
  }
  return r.stdout;
}

/**
 * Start a server. `settings`: extra `-c name=value` settings. Resolves with
 * `{ dir, port, socketDir, url (TCP), socketUrl, bin, stop() }`.
 */
export async function startServer({ settings = {} } = {}) {
  const bin = findPgBin();
  if (bin === null) {
    throw new Error(
      'no PostgreSQL server binaries (initdb, pg_ctl) found: install Debian/Ubuntu package `postgresql`, or set PG_BIN',
    );
  }
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'bakery-pg-'));
  fs.chmodSync(dir, 0o755);
  if (asRoot) execFileSync('chown', ['postgres:', dir]);
  const data = path.join(dir, 'data');
  run(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--no-sync',
  ]);
  const all = {
    listen_addresses: "'127.0.0.1'",
    max_connections: '300',
    // Test speed: a crash of this server loses its data, which is thrown away anyway.
    fsync: 'off',
    full_page_writes: 'off',
    ...settings,
  };
  let port;
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    const opts = [
      `-p ${port}`,
      `-k ${dir}`,
      ...Object.entries(all).map(([k, v]) => `-c ${k}=${v}`),
    ];
    try {
      run(path.join(bin, 'pg_ctl'), [
        '-D',
        data,
        '-o',
        opts.join(' '),
        '-l',
        path.join(dir, 'log'),
        '-w',
        '-t',
        '60',
        'start',
      ]);
      lastError = undefined;
      break;
    } catch (err) {
      lastError = err; // the port was taken in between: try another
    }
  }
  if (lastError !== undefined) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }
  const server = {
    dir,
    bin,
    port,
    socketDir: dir,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    socketUrl: `postgresql://postgres@/postgres?host=${encodeURIComponent(dir)}&port=${port}`,
    stop() {
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already stopped
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const server = await startServer();
  console.log(`PostgreSQL ${server.bin} running (data in ${server.dir})`);
  console.log(`TCP:         ${server.url}`);
  console.log(`unix socket: ${server.socketUrl}`);
  console.log('Ctrl-C stops it and deletes the data.');
  const stop = () => {
    server.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}
