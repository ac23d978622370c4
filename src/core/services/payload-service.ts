// Payloads: named parameter bundles with a schema (ncore-api payloads), and which one a machine gets.
import { KilnError } from '../kiln-error.js';
import type { Clock, ExpectedRevision, Store } from '../ports.js';
import type { Machine, Payload } from '../types.js';
import { validateName } from '../validate.js';

export interface PayloadInput {
  name: string;
  description?: string | undefined;
  /** Default: the payload's name (ncore's PayloadDirectory usually equals its id). */
  directory?: string | undefined;
  schema?: string[] | undefined;
  parameters?: Record<string, string> | undefined;
}

// Directories are relative paths a booted machine joins to its payload root: no `..`, no leading `/`.
const DIRECTORY = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const PARAMETER = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const MAX_PARAMETERS = 256;
const MAX_VALUE = 16 * 1024;

function invalid(message: string): KilnError {
  return new KilnError('KILN_PAYLOAD_INVALID', message);
}

export class PayloadService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  private build(input: PayloadInput, prev: Payload | null): Payload {
    const name = validateName(input.name, 'payload name');
    const directory = input.directory ?? prev?.directory ?? name;
    if (directory.length > 255 || !DIRECTORY.test(directory)) throw invalid(`directory must be a relative path of [A-Za-z0-9._-] segments, got ${JSON.stringify(directory.slice(0, 80))}`);
    const schema = [...new Set(input.schema ?? prev?.schema ?? [])];
    if (schema.length > MAX_PARAMETERS) throw invalid(`at most ${MAX_PARAMETERS} parameters`);
    for (const p of schema) if (!PARAMETER.test(p)) throw invalid(`parameter name ${JSON.stringify(p.slice(0, 80))} must match ${PARAMETER.source}`);
    const parameters = input.parameters ?? prev?.parameters ?? {};
    for (const [k, v] of Object.entries(parameters)) {
      if (!schema.includes(k)) throw invalid(`parameter ${JSON.stringify(k.slice(0, 80))} is not in the payload's schema (${schema.join(', ') || 'empty'})`);
      if (typeof v !== 'string' || v.length > MAX_VALUE) throw invalid(`parameter ${k} must be a string of at most ${MAX_VALUE} characters`);
    }
    const at = this.clock.now().toISOString();
    return {
      name,
      description: input.description ?? prev?.description ?? '',
      directory,
      schema: schema.sort(),
      parameters: { ...parameters },
      createdAt: prev?.createdAt ?? at,
      updatedAt: at,
      revision: (prev?.revision ?? 0) + 1,
    };
  }

  async create(input: PayloadInput): Promise<Payload> {
    return this.store.createPayload(this.build(input, null));
  }

  async get(name: string): Promise<Payload> {
    const p = await this.store.getPayload(name);
    if (p === null) throw new KilnError('KILN_PAYLOAD_NOT_FOUND', `no payload ${JSON.stringify(name.slice(0, 80))}`);
    return p;
  }

  async find(name: string): Promise<Payload | null> {
    return this.store.getPayload(name);
  }

  async list(): Promise<Payload[]> {
    return this.store.listPayloads();
  }

  /** Replaces the fields given; omitted ones keep their values. */
  async update(name: string, input: Omit<PayloadInput, 'name'>, expected: ExpectedRevision): Promise<Payload> {
    const prev = await this.get(name);
    return this.store.replacePayload(this.build({ ...input, name }, prev), expected);
  }

  async delete(name: string, expected: ExpectedRevision): Promise<void> {
    await this.store.deletePayload(name, expected);
  }

  /** Sets (or with null clears) the machine's own payload; the single-payload-per-machine rule of ncore-api. */
  async assign(machine: Machine, payload: string | null, expected: ExpectedRevision): Promise<Machine> {
    return this.store.transaction(async (tx) => {
      if (payload !== null && (await tx.getPayload(payload)) === null) throw new KilnError('KILN_PAYLOAD_NOT_FOUND', `no payload ${JSON.stringify(payload.slice(0, 80))}`);
      const cur = await tx.getMachine(machine.id);
      if (cur === null) throw new KilnError('KILN_MACHINE_NOT_FOUND', `no machine ${machine.id}`);
      if (cur.payload === payload) return cur;
      return tx.replaceMachine({ ...cur, payload, updatedAt: this.clock.now().toISOString() }, expected);
    });
  }

  /** The payload a machine fetches: its own, else the one of the profile it boots (when given). */
  async effective(machine: Machine, profilePayload: string | null): Promise<Payload | null> {
    const name = machine.payload ?? profilePayload;
    return name === null ? null : this.store.getPayload(name);
  }
}
