// Runs one load job in a child process (bench/load-client.mjs) and accounts for the CPU around it:
// the server's (from /proc), the client's (its own), and everyone else's on the box (the noise
// indicator: this machine is shared, so a run with much "other" CPU is less trustworthy).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onCleanup, stopChild } from './cleanup.mjs';
import { boxBusySeconds } from './proc-stats.mjs';

const CLIENT = fileURLToPath(new URL('./load-client.mjs', import.meta.url));

/**
 * Starts a job that runs until stopped (the script probe) beside another one; `stop()` resolves its
 * result. Its CPU is not accounted: it is light by design, and lands in the "other" column.
 */
export function startSideClient(job) {
  const child = fork(CLIENT, [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const kill = onCleanup(`side client ${child.pid}`, () => stopChild(child, { graceMs: 2000 }));
  const result = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.type === 'result') resolve(m.result);
      else if (m.type === 'error') reject(new Error(`side client failed: ${m.message}`));
    });
    child.once('exit', (code) => {
      void kill();
      reject(new Error(`side client exited with ${code} before reporting`));
    });
  });
  // A failure before stop() is asked for surfaces there, not as an unhandled rejection.
  result.catch(() => undefined);
  return {
    stop: () => {
      if (child.connected) child.send({ type: 'stop' });
      return result;
    },
  };
}

/** `server` is a handle from startKiln or startNginx. Resolves { result, wallS, serverCpuS, clientCpuS, otherCpuPct, ... }. */
export function runClient(job, server) {
  const child = fork(CLIENT, [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const stop = onCleanup(`load client ${child.pid}`, () => stopChild(child, { graceMs: 2000 }));
  let before = null;
  return new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.type === 'start') {
        before = { t: performance.now(), server: server.cpuSeconds(), box: boxBusySeconds() };
      } else if (m.type === 'result') {
        const wallS = (performance.now() - before.t) / 1000;
        const serverCpuS = server.cpuSeconds() - before.server;
        const boxS = boxBusySeconds() - before.box;
        resolve({
          result: m.result,
          wallS,
          serverCpuS,
          serverCpuPct: (serverCpuS / wallS) * 100,
          clientCpuS: m.clientCpuS,
          clientCpuPct: (m.clientCpuS / wallS) * 100,
          // Kernel work for loopback TCP lands partly here (softirq), so a few tens of % is normal.
          otherCpuPct: Math.max(0, ((boxS - serverCpuS - m.clientCpuS) / wallS) * 100),
        });
      } else if (m.type === 'error') {
        reject(new Error(`load client failed: ${m.message}`));
      }
    });
    child.once('exit', (code) => {
      void stop();
      reject(new Error(`load client exited with ${code} before reporting`));
    });
  });
}
