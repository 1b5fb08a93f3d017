/**
 * Two measured facts about @napi-rs/keyring (Linux, Secret Service) that matter to the broker, reproducible here:
 *
 *   1. `new AsyncEntry(service, account)` opens a D-Bus connection synchronously: ≈5 ms on the event loop per
 *      construction, and the connection (one fd) stays open until the object is garbage collected.
 *      electron/broker/secrets/keychain-store.ts constructs one per get/set/delete.
 *   2. Once the process has ~1,024 file descriptors open, the constructor never returns: the main thread spins at
 *      100% CPU (the new connection's fd is ≥ 1024). A broker holding ~1,000 sockets (500 concurrent first calls to
 *      20 servers: IDE-side plus upstream sockets) that then writes a minted token to the keychain freezes.
 *
 *   bash scripts/keyring-session.sh npx tsx bench/keychain-probe.ts
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeSync } from 'node:fs';
import { AsyncEntry } from '@napi-rs/keyring';

const OPTIONS = { linux: { store: 'secret-service' as const } };
const SERVICE = `lanyard-keychain-probe-${process.pid}`;

if (process.argv[2] === '--child') {
  // Child: open N extra fds, then construct one entry; the parent watches the clock.
  const extra = Number(process.argv[3]);
  for (let i = 0; i < extra; i++) openSync('/dev/null', 'r');
  const t = performance.now();
  const entry = new AsyncEntry(`${SERVICE}-child`, 'a', OPTIONS);
  writeSync(1, `constructed in ${(performance.now() - t).toFixed(1)} ms\n`);
  await entry.getPassword();
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

// 2. The constructor with ~900 and ~1,030 other fds open, in a child process with a 10 s watchdog.
for (const extra of [900, 1030]) {
  const outcome = await new Promise<string>((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--child', String(extra)], {
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
    child.on('exit', () => {
      clearTimeout(watchdog);
      resolve(out.trim() || 'exited without output');
    });
  });
  process.stdout.write(`with ${extra} extra fds open: ${outcome}\n`);
}

function threadState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
}
