#!/usr/bin/env node
// Two machines' worth of processes taking turns on one @bakery/pg lock, over TCP.
//
//   node scripts/two-machines.mjs [--url postgresql://user@host:5432/db]
//        [--machines 2] [--per-machine 4] [--rounds 3] [--increments 25]
//
// Every participant is a separate Node process with its own TCP session, labelled as machine
// A, B, … process k. Run it from two real machines' point of view by pointing --url at a
// server on the network; without --url it starts a throwaway local server (Debian's
// postgresql package) and stops it afterwards.
//
// 1. Arrival order: the coordinator holds the lock, lets the participants queue one at a time,
//    interleaving the machines (A0 B0 A1 B1 …), and confirms each wait in the server's queue
//    (pg_locks) before the next arrives; after it releases, the log of grants must be exactly
//    the arrival order. Repeated --rounds times, with the arrival order rotated each round.
// 2. Exact counts: every participant then does --increments read–yield–write increments of a
//    shared counter row under the lock, all at once; the counter must equal the number of
//    increments made (a second holder would lose updates), and the fencing tokens in the log
//    must be strictly increasing in grant order.
//
// Creates two tables named bakery_demo_<random> (dropped at the end) and lock rows in
// bakery_locks. Exit status 0 when every check holds, 1 otherwise.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openMutex } from '../dist/index.js';

const self = fileURLToPath(import.meta.url);

if (process.argv[2] === '--participant') await participant(process.argv.slice(3));
else process.exitCode = await coordinator(process.argv.slice(2));

async function coordinator(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      machines: { type: 'string', default: '2' },
      'per-machine': { type: 'string', default: '4' },
      rounds: { type: 'string', default: '3' },
      increments: { type: 'string', default: '25' },
    },
  });
  const machines = positive(values.machines, 'machines', 26);
  const perMachine = positive(values['per-machine'], 'per-machine', 64);
  const rounds = positive(values.rounds, 'rounds', 1000);
  const increments = positive(values.increments, 'increments', 100_000);

  let server = null;
  let url = values.url;
  if (url === undefined) {
    const { startServer } = await import('./throwaway-server.mjs');
    server = await startServer();
    url = server.url; // TCP, 127.0.0.1
    // pg_ctl puts the server in a session of its own: Ctrl-C does not reach it, so stop it here.
    for (const sig of ['SIGINT', 'SIGTERM'])
      process.once(sig, () => {
        server.stop();
        process.exit(130);
      });
  }
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', (err) => console.error(`FAIL the coordinator's connection: ${err.message}`));
  const children = [];
  let ok = true;
  const check = (cond, what) => {
    console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
    if (!cond) ok = false;
  };
  try {
    await admin.connect();
    const version = (await admin.query('SHOW server_version')).rows[0].server_version;
    const id = randomBytes(4).toString('hex');
    const data = `bakery_demo_${id}`;
    const log = `bakery_demo_${id}_log`;
    const name = `two-machines-${id}`;
    await admin.query(`CREATE TABLE ${data} (id int PRIMARY KEY, value int8 NOT NULL)`);
    await admin.query(`INSERT INTO ${data} VALUES (1, 0)`);
    await admin.query(
      `CREATE TABLE ${log} (seq bigserial PRIMARY KEY, who text NOT NULL, fence int8 NOT NULL)`,
    );
    const where = server ? `a throwaway server at ${new URL(url).host}` : new URL(url).host;
    console.log(
      `PostgreSQL ${version} (${where}), TCP: ${machines} machines × ${perMachine} processes on lock ${JSON.stringify(name)}`,
    );

    // The participants, each its own process and TCP session.
    const labels = [];
    for (let k = 0; k < perMachine; k++)
      for (let m = 0; m < machines; m++) labels.push(`${String.fromCharCode(65 + m)}${k}`);
    for (const who of labels) children.push(await startParticipant(who, url, name, data, log));

    const holder = await openMutex(name, { connection: url });
    const watcher = await openMutex(name, { connection: url });
    const turns = async () => (await admin.query(`SELECT who FROM ${log} ORDER BY seq`)).rows;
    let expected = 0;
    for (let round = 0; round < rounds; round++) {
      const order = labels.map((_, i) => labels[(i + round) % labels.length]);
      const lease = await holder.lock();
      const before = (await turns()).length;
      const granted = [];
      for (const [i, who] of order.entries()) {
        const child = children.find((c) => c.who === who);
        granted.push(child.request({ op: 'turn' }));
        // The next one arrives only once this one waits in the server's queue.
        const giveUp = performance.now() + 30_000;
        for (;;) {
          if (performance.now() > giveUp)
            throw new Error(`${who} never appeared in the server's queue for the lock`);
          // A session's application_name is `bakery <host> <pid>`: the participant's process.
          const queued = (await watcher.inspect()).waiters.map((w) => w.applicationName);
          if (queued.length === i + 1 && queued[i]?.endsWith(` ${child.child.pid}`)) break;
          if (queued.length > i + 1) throw new Error('a participant queued out of turn');
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      await lease.release();
      await Promise.all(granted);
      expected += order.length;
      const got = (await turns()).slice(before).map((r) => r.who);
      check(
        got.join(' ') === order.join(' '),
        `round ${round + 1}: arrived ${order.join(' ')} → granted ${got.join(' ')}`,
      );
    }
    await holder.close();
    await watcher.close();

    // All at once: exact counts.
    const t0 = performance.now();
    await Promise.all(children.map((c) => c.request({ op: 'run', increments })));
    const ms = performance.now() - t0;
    expected += children.length * increments;
    const value = Number(
      (await admin.query(`SELECT value FROM ${data} WHERE id = 1`)).rows[0].value,
    );
    check(
      value === expected,
      `counter ${value} = ${expected} increments (${children.length} processes × ${increments} read–yield–write under the lock, plus the rounds; ${Math.round((children.length * increments * 1000) / ms)} acquisitions/s)`,
    );
    const fences = (await admin.query(`SELECT fence FROM ${log} ORDER BY seq`)).rows.map((r) =>
      BigInt(r.fence),
    );
    check(
      fences.every((f, i) => i === 0 || f > fences[i - 1]),
      `fencing tokens strictly increasing over ${fences.length} grants (${fences[0]} … ${fences.at(-1)})`,
    );
    const perProcess = (
      await admin.query(`SELECT who, count(*)::int AS n FROM ${log} GROUP BY who ORDER BY who`)
    ).rows;
    check(
      perProcess.length === children.length && perProcess.every((r) => r.n === rounds + increments),
      `every process had exactly ${rounds + increments} turns`,
    );
    await admin.query(`DROP TABLE ${data}, ${log}`);
    await admin.query('DELETE FROM bakery_locks WHERE name = $1', [name]);
  } catch (err) {
    console.error(`FAIL ${err.stack ?? err}`);
    ok = false;
  } finally {
    for (const c of children) c.child.kill();
    await admin.end().catch(() => {});
    server?.stop();
  }
  console.log(ok ? 'all checks hold' : 'a check FAILED');
  return ok ? 0 : 1;
}

function positive(text, what, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    console.error(`--${what} must be an integer from 1 to ${max}`);
    process.exit(2);
  }
  return n;
}

function startParticipant(who, url, name, data, log) {
  const child = fork(self, ['--participant', who, url, name, data, log], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = [];
  child.on('message', (m) => pending.shift()?.(m));
  child.on('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM')
      for (const p of pending.splice(0))
        p({ error: `participant ${who} exited (${code ?? signal})` });
  });
  const request = (msg) =>
    new Promise((resolve, reject) => {
      pending.push((m) => (m.error ? reject(new Error(m.error)) : resolve(m)));
      if (msg) child.send(msg);
    });
  return request(null).then(() => ({ who, child, request }));
}

async function participant([who, url, name, data, log]) {
  const mutex = await openMutex(name, { connection: url });
  const db = new pg.Client({ connectionString: url });
  // The server went away (the coordinator stopped): nothing left to do.
  db.on('error', () => process.exit(1));
  await db.connect();
  process.send({ ready: true });
  const turn = async () => {
    const lease = await mutex.lock();
    // Read, yield, write: two holders at once would lose an increment.
    const { value } = (await db.query(`SELECT value FROM ${data} WHERE id = 1`)).rows[0];
    await new Promise((r) => setImmediate(r));
    await db.query(`UPDATE ${data} SET value = $1 WHERE id = 1`, [BigInt(value) + 1n]);
    await db.query(`INSERT INTO ${log} (who, fence) VALUES ($1, $2)`, [who, lease.fencingToken]);
    await lease.release();
  };
  process.on('message', async (m) => {
    try {
      if (m.op === 'turn') await turn();
      else for (let k = 0; k < m.increments; k++) await turn();
      process.send({ done: true });
    } catch (err) {
      process.send({ error: `${who}: ${err.code ?? ''} ${err.message}` });
    }
  });
  process.on('disconnect', async () => {
    await mutex.close().catch(() => {});
    await db.end().catch(() => {});
  });
}
