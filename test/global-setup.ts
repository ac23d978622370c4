// Builds dist/ once before the suite, for tests that run the `kiln` binary as a child process.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync('sh', ['scripts/ensure-ready.sh'], { stdio: 'inherit' });
}
