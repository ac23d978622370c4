// Child-process entry of bench/s3-server.mjs (a server, not a load job): s3rver on a free loopback
// port with its objects in argv[2]. Prints "port <n>" once listening; SIGTERM closes it.
import { createRequire } from 'node:module';

const S3rver = createRequire(import.meta.url)('s3rver');
const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2] });
const { port } = await server.run();
process.once('SIGTERM', () => {
  server.close().finally(() => process.exit(0));
});
console.log(`port ${port}`);
