// Registers the resource commands (`kiln <noun> <verb>`).
import type { Command } from 'commander';

export function registerResourceCommands(program: Command): void {
  void program;
}
