// What the kernel knows about processes and the box: CPU seconds (utime+stime from /proc/<pid>/stat),
// peak RSS (VmHWM), whole-box busy time (/proc/stat), and the machine facts a report starts with.
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ; 100 on every Linux this runs on (getconf CLK_TCK)

function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** utime + stime of one process, in seconds. */
export function cpuSecondsOf(pid) {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
}

/** The process and all its live descendants (nginx: master and workers). */
export function processTree(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(statFields(name)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

export function treeCpuSeconds(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += cpuSecondsOf(p);
    } catch {
      // exited while we looked
    }
  }
  return sum;
}

function statusKiB(pid, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]);
}

/** Peak resident set (VmHWM) of one process since it started, in bytes. */
export function peakRssBytesOf(pid) {
  return statusKiB(pid, 'VmHWM') * 1024;
}

/** Sum of the tree's peaks (an upper bound on the tree's peak). */
export function treePeakRssBytes(pid) {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + peakRssBytesOf(p);
    } catch {
      return sum;
    }
  }, 0);
}

/** CPU seconds the whole box spent busy (all cores; everything but idle and iowait). */
export function boxBusySeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - f[3] - f[4]) / TICKS_PER_SECOND;
}

export function machineFacts() {
  const c = cpus();
  return {
    cores: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
}
