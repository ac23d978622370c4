// Runs a host command to completion and fails with its stderr (image builds and the e2e lab shell out).
import { spawn } from 'node:child_process';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export async function runCommand(cmd: string, args: readonly string[], opts: { cwd?: string; input?: string; allowFailure?: boolean } = {}): Promise<CommandResult & { code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0 && opts.allowFailure !== true) {
        reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${stderr.trim()}`));
      } else {
        resolve({ stdout, stderr, code });
      }
    });
    // A command that exits before reading its input must fail on its exit code, not on EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
