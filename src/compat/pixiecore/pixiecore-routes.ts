// pixiecore's API mode: GET /v1/boot/<mac> answers with a kernel, initrds and a cmdline, or 404.
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../api/services.js';
import type { ArtifactLinks } from '../../boot/http/artifact-links.js';

export interface PixiecoreSettings {
  nextBootWindowSeconds: number;
}

export interface PixiecoreRouteOptions {
  services: Services;
  links: ArtifactLinks;
  settings: PixiecoreSettings;
  publicUrl: string | null;
}

export const pixiecoreRoutes: FastifyPluginAsync<PixiecoreRouteOptions> = async () => {};
