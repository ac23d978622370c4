// `self-test`: proves a worker end to end without touching anything: a small tree of `sleep`
// processes under `sh`, its pids in the log, progress while it waits. Only numbers come from the
// input, passed as arguments (never spliced into the script).
import { Type } from 'typebox';
import { defineJobType } from './job-types.js';

export const SelfTestInput = Type.Object(
  {
    seconds: Type.Integer({ minimum: 0, maximum: 3600, default: 2, description: 'how long the processes sleep' }),
    processes: Type.Integer({ minimum: 1, maximum: 8, default: 2, description: 'sleep processes started in the background' }),
    fail: Type.Boolean({ default: false, description: 'end with an error instead of a result' }),
  },
  { additionalProperties: false },
);

const SCRIPT = [
  'i=0',
  'while [ "$i" -lt "$2" ]; do sleep "$1" & echo "sleeper pid $!"; i=$((i+1)); done',
  'echo "shell pid $$"',
  'wait',
  'echo "sleepers done"',
].join('\n');

export const selfTestJob = defineJobType({
  type: 'self-test',
  description: 'Runs a small tree of sleep processes on a worker: proves claiming, logs, progress, cancel and cleanup',
  inputSchema: SelfTestInput,
  apiCreatable: true,
  timeoutSeconds: 3900,
  maxAttempts: 1,
  async run(ctx) {
    const { seconds, processes, fail } = ctx.input;
    ctx.stage('sleeping');
    ctx.log.line(`self-test: ${processes} processes sleeping ${seconds} s in ${ctx.workDir}`);
    const started = Date.now();
    const ticker = setInterval(() => ctx.progress(seconds === 0 ? 100 : Math.min(99, ((Date.now() - started) / 1000 / seconds) * 100)), 1000);
    try {
      await ctx.run('sh', ['-c', SCRIPT, 'self-test', String(seconds), String(processes)]);
    } finally {
      clearInterval(ticker);
    }
    ctx.stage('done');
    if (fail) throw new Error('self-test was asked to fail');
    return { seconds, processes };
  },
});
