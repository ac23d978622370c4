// The BAAS control server API (baas-project/baas), translated onto Kiln's services: everything it
// stores is Kiln data, visible through the native API. Route groups live beside this file.
import type { FastifyPluginAsync } from 'fastify';
import { attachUsers } from '../../api/auth.js';
import { BrowserLogin, type LoginRouteOptions } from '../../api/login/login-routes.js';
import type { Services } from '../../api/services.js';
import { KilnError } from '../../core/kiln-error.js';
import { BaasError, installBaasErrors, sendText } from './baas-http.js';
import { registerImageRoutes } from './baas-image-routes.js';
import { registerMachineRoutes } from './baas-machine-routes.js';
import { registerSetupRoutes } from './baas-setup-routes.js';
import { registerUserRoutes } from './baas-user-routes.js';

export interface BaasRouteOptions {
  services: Services;
  login: LoginRouteOptions;
}

export const baasRoutes: FastifyPluginAsync<BaasRouteOptions> = async (app, opts) => {
  const s = opts.services;
  attachUsers(s.tokens, s.users);
  installBaasErrors(app);
  // Go's handlers read JSON whatever the Content-Type says, and uploads are streams: every body
  // reaches the handler unread.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  // GitHub login as the original offers it (not a redirect), run by Kiln's configured login.
  const login = new BrowserLogin(opts.login);
  const callback = `${app.prefix}/user/login/github/callback`;
  app.get('/user/login/github', async (req, reply) => {
    const { url, cookie } = await login.begin(req, callback, '/');
    return sendText(reply.header('set-cookie', cookie).header('cache-control', 'no-store'), 200, `Visit the following URI: ${url}`);
  });
  app.get('/user/login/github/callback', async (req, reply) => {
    try {
      const { cookies } = await login.finish(req);
      return sendText(reply.header('set-cookie', cookies).header('cache-control', 'no-store'), 200, 'Please check the cookies to get your session ID!');
    } catch (err) {
      if (err instanceof KilnError && err.code === 'KILN_LOGIN_FAILED') throw new BaasError(400, err.message);
      throw err;
    }
  });

  registerUserRoutes(app, s);
  registerMachineRoutes(app, s);
  registerImageRoutes(app, s);
  registerSetupRoutes(app, s);
};
