// /api/v1/payloads: named parameter bundles machines fetch after booting (ncore-api payloads).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../services.js';

export const payloadRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async () => {};
