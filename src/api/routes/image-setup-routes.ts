// /api/v1/image-setups and /api/v1/machines/{id}/boot-queue. (Stub: being written.)
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../services.js';

export const imageSetupRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async () => {};
