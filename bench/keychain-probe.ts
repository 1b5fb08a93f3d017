/**
 * Three measured facts about @napi-rs/keyring 2.1.2 (Linux, Secret Service) that shape the keychain store,
 * reproducible here:
 *
 *   1. `new AsyncEntry(service, account)` opens a D-Bus connection synchronously: ≈5 ms on the event loop per
 *      construction, and the connection (one fd) stays open until the object is garbage collected.
 *   2. Once the process has ~1,024 file descriptors open, the constructor never returns (the main thread spins at
 *      100% CPU) or the process dies with SIGSEGV: the vendored libdbus waits on the new connection's socket with
 *      select(), whose fd_set holds descriptors below 1,024 only. A broker holding ~1,000 sockets (500 concurrent
 *      first calls to 20 servers: IDE-side plus upstream sockets) that then built an entry to store a token froze.
 *   3. An entry built while the count was low keeps working with thousands of descriptors open, and
 *      `findCredentialsAsync` (zbus, not libdbus) works at any count: so electron/broker/secrets/keychain-store.ts
 *      reads everything with one enumeration at start and writes through one entry built then.
 *
 *   bash scripts/keyring-session.sh npx tsx bench/keychain-probe.ts
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeSync } from 'node:fs';
import { AsyncEntry } from '@napi-rs/keyring';

const OPTIONS = { linux: { store: 'secret-service' as const } };
const SERVICE = `lanyard-keychain-probe-${process.pid}`;

if (process.argv[2] === '--child') {
  // Child: open N extra fds, then construct one entry (or, with --reuse, use one built before); the parent watches.
  const extra = Number(process.argv[3]);
  const early = process.argv[4] === '--reuse' ? new AsyncEntry(`${SERVICE}-child`, 'a', OPTIONS) : undefined;
  for (let i = 0; i < extra; i++) openSync('/dev/null', 'r');
  const t = performance.now();
  const entry = early ?? new AsyncEntry(`${SERVICE}-child`, 'a', OPTIONS);
  await entry.setPassword('value');
  await entry.getPassword();
  await entry.deleteCredential();
  writeSync(1, `${early ? 'reused entry: set/get/delete' : 'constructed and used'} in ${(performance.now() - t).toFixed(1)} ms\n`);
  process.exit(0);
}

// 1. Blocking time of the constructor, and the async part of the call.
const blocked: number[] = [];
const total: number[] = [];
for (let i = 0; i < 20; i++) {
  let t = performance.now();
  const entry = new AsyncEntry(SERVICE, `account-${i}`, OPTIONS);
  blocked.push(performance.now() - t);
  t = performance.now();
  await entry.setPassword('value');
  total.push(performance.now() - t);
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!.toFixed(1);
process.stdout.write(
  `new AsyncEntry(): median ${med(blocked)} ms on the event loop; setPassword afterwards: median ${med(total)} ms (off-thread)\n`,
);
for (let i = 0; i < 20; i++) await new AsyncEntry(SERVICE, `account-${i}`, OPTIONS).deleteCredential();

// 2-3. The constructor with ~900 and ~1,030 other fds open, and an entry built before 2,000 were opened, each in a
// child process with a 10 s watchdog.
for (const [extra, reuse] of [
  [900, false],
  [1030, false],
  [2000, true],
] as const) {
  const outcome = await new Promise<string>((resolve) => {
    const args = [...process.execArgv, process.argv[1]!, '--child', String(extra), ...(reuse ? ['--reuse'] : [])];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const watchdog = setTimeout(() => {
      let cpu = '';
      try {
        cpu = ` (main thread state ${threadState(child.pid!)}: R = running, i.e. spinning)`;
      } catch {
        // not Linux: no /proc
      }
      child.kill('SIGKILL');
      resolve(`no return after 10 s${cpu}: frozen`);
    }, 10_000);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      resolve(out.trim() || `exited without output (${signal ?? `code ${code}`})`);
    });
  });
  process.stdout.write(`with ${extra} extra fds open${reuse ? ', entry built before' : ''}: ${outcome}\n`);
}

function threadState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
}
