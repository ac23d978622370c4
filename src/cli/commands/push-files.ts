// `kiln image push` transfer: hashes each file locally (streaming), uploads it to
// PUT /artifacts/{sha256}?size=N as a streamed body, and checks the server stored the same digest.
// Constant memory whatever the file size. Progress: one bar per file on a TTY, else one line per file.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { Artifact, ArtifactRole } from '../../core/types.js';
import { isArtifactName } from '../../core/validate.js';
import { CliError, type ApiClient } from '../api-client.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, usageError } from './command-helpers.js';

export interface PushFile {
  path: string;
  /** Artifact name in the version: the file's basename. */
  name: string;
  role: ArtifactRole;
  size: number;
}

export interface PushedFile extends PushFile {
  sha256: string;
  /** False when the server already had these bytes. */
  created: boolean;
}

const CHUNK = 1024 * 1024;

/** Checks the files exist, are regular files and have usable, distinct basenames; returns them with sizes. */
export async function preparePushFiles(files: readonly { path: string; role: ArtifactRole }[]): Promise<PushFile[]> {
  const out: PushFile[] = [];
  const names = new Map<string, string>();
  for (const f of files) {
    let size: number;
    try {
      const st = await stat(f.path);
      if (!st.isFile()) throw usageError(`${f.path}: not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw usageError(`cannot read ${f.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const name = basename(f.path);
    // The server's rule, checked here so a bad name fails before any upload.
    if (!isArtifactName(name)) throw usageError(`${f.path}: the file name ${JSON.stringify(name)} cannot name an artifact (letters, digits, ".", "_", "+", "-"; 128 at most); copy or rename the file`);
    const other = names.get(name);
    if (other !== undefined) throw usageError(`${other} and ${f.path} have the same file name ${JSON.stringify(name)}; artifact names must be distinct`);
    names.set(name, f.path);
    out.push({ path: f.path, name, role: f.role, size });
  }
  return out;
}

export async function sha256File(path: string, onBytes: (done: number) => void = () => undefined): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
      const buf = chunk as Buffer;
      hash.update(buf);
      done += buf.length;
      onBytes(done);
    }
  } catch (err) {
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, EXIT.failure);
  }
  return hash.digest('hex');
}

/** Streams the file as the request body; the server verifies sha256 and size while it stores. */
export async function uploadFile(client: ApiClient, path: string, sha256: string, size: number, onBytes: (done: number) => void = () => undefined): Promise<{ artifact: Artifact; created: boolean }> {
  const source = createReadStream(path, { highWaterMark: CHUNK });
  let sent = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sent += chunk.length;
      onBytes(sent);
      cb(null, chunk);
    },
  });
  // Only the file's own errors count as read errors; the pipeline also fails when the request ends early.
  let readError: Error | undefined;
  source.once('error', (err) => {
    readError = err;
  });
  const piping = pipeline(source, counter).catch(() => undefined);
  try {
    const res = await client.request<Artifact>('PUT', `/artifacts/${sha256}`, {
      body: counter,
      query: { size },
      headers: { 'content-type': 'application/octet-stream' },
    });
    return { artifact: res.body, created: res.status === 201 };
  } catch (err) {
    if (readError !== undefined) throw new CliError(`cannot read ${path}: ${readError.message}`, EXIT.failure);
    throw err;
  } finally {
    // When the request ended early (refused, connection lost) the file stream may still be open.
    source.destroy();
    counter.destroy();
    await piping;
  }
}

interface FileProgress {
  phase(phase: 'hashing' | 'uploading'): void;
  update(done: number): void;
  finish(outcome: string, sha256: string): void;
}

interface Progress {
  file(f: PushFile): FileProgress;
  stop(): void;
}

function ttyProgress(stream: NodeJS.WriteStream, files: readonly PushFile[]): Progress {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: ' {name} |{bar}| {percentage}% | {doneText} / {sizeText} | {phase}',
      barsize: 20,
      // Ctrl-C must still stop the upload: no signal handlers, and the cursor is never hidden.
      hideCursor: false,
      gracefulExit: false,
      clearOnComplete: false,
      stopOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const width = Math.max(...files.map((f) => f.name.length));
  return {
    file(f) {
      const total = Math.max(f.size, 1);
      const bar = multi.create(total, 0, { name: f.name.padEnd(width), doneText: formatBytes(0), sizeText: formatBytes(f.size), phase: 'hashing' });
      let phase: 'hashing' | 'uploading' = 'hashing';
      return {
        phase(p) {
          phase = p;
          bar.update(0, { doneText: formatBytes(0), phase });
        },
        update(done) {
          bar.update(Math.min(done, total), { doneText: formatBytes(done), phase });
        },
        finish(outcome) {
          bar.update(total, { doneText: formatBytes(f.size), phase: outcome });
        },
      };
    },
    stop() {
      multi.stop();
    },
  };
}

function lineProgress(write: (s: string) => void): Progress {
  return {
    file(f) {
      return {
        phase: () => undefined,
        update: () => undefined,
        finish: (outcome, sha256) => write(`${f.name} (${f.role}, ${formatBytes(f.size)}): ${outcome}, sha256 ${sha256}\n`),
      };
    },
    stop: () => undefined,
  };
}

/** Hashes and uploads the files one by one, in order; throws on the first failure. */
export async function pushFiles(client: ApiClient, files: readonly PushFile[], stderr: NodeJS.WriteStream = process.stderr): Promise<PushedFile[]> {
  const progress = stderr.isTTY ? ttyProgress(stderr, files) : lineProgress((s) => stderr.write(s));
  const out: PushedFile[] = [];
  try {
    for (const f of files) {
      const p = progress.file(f);
      const sha256 = await sha256File(f.path, (n) => p.update(n));
      p.phase('uploading');
      const { artifact, created } = await uploadFile(client, f.path, sha256, f.size, (n) => p.update(n));
      if (artifact?.sha256 !== sha256 || artifact.size !== f.size) {
        throw new CliError(`the server stored ${f.path} as sha256 ${String(artifact?.sha256)} (${String(artifact?.size)} bytes); expected ${sha256} (${f.size} bytes)`, EXIT.failure);
      }
      p.finish(created ? 'uploaded' : 'already stored', sha256);
      out.push({ ...f, sha256, created });
    }
  } finally {
    progress.stop();
  }
  return out;
}
