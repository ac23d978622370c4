// /api/v1/users: users and their roles. (Stub: being written.)
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Services } from '../services.js';

export const userRoutes: FastifyPluginAsyncTypebox<{ services: Services }> = async () => {};
