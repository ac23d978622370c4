// The BAAS control server API, translated onto Kiln's services. (Stub: being written.)
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../api/services.js';
import type { LoginRouteOptions } from '../../api/login/login-routes.js';

export interface BaasRouteOptions {
  services: Services;
  login: LoginRouteOptions;
}

export const baasRoutes: FastifyPluginAsync<BaasRouteOptions> = async () => {};
