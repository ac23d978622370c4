// PortPool: hands each customize session a port of the configured range that is free on this host.
// A port is tried by binding it (another process may hold it); ports this process gave out stay
// reserved until released, since sshd binds them a moment after the check.
import { createServer } from 'node:net';
import { KilnError } from '../../core/kiln-error.js';
import type { PortRange } from './customize-settings.js';

/** True when `address:port` can be bound now. */
export function canBind(address: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(false);
      else reject(new KilnError('KILN_CUSTOMIZE_SSHD_FAILED', `cannot listen on ${address}:${port} (customize.address): ${err.message}`));
    });
    server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

export class PortPool {
  private readonly taken = new Set<number>();

  constructor(
    private readonly address: string,
    private readonly range: PortRange,
    /** Where to start looking (default: at random, so workers sharing a host rarely collide). */
    private readonly start: () => number = () => Math.floor(Math.random() * (range.last - range.first + 1)),
  ) {}

  /** A free port, reserved until `release`; KILN_CUSTOMIZE_NO_PORT when every port is busy. */
  async reserve(): Promise<number> {
    const size = this.range.last - this.range.first + 1;
    const offset = this.start();
    for (let i = 0; i < size; i++) {
      const port = this.range.first + ((offset + i) % size);
      if (this.taken.has(port)) continue;
      this.taken.add(port);
      if (await canBind(this.address, port).catch((err: unknown) => {
        this.taken.delete(port);
        throw err;
      })) return port;
      this.taken.delete(port);
    }
    throw new KilnError('KILN_CUSTOMIZE_NO_PORT', `every port of ${this.range.first}-${this.range.last} on ${this.address} is in use`);
  }

  release(port: number): void {
    this.taken.delete(port);
  }
}
