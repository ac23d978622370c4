// ncore-api v2 (CoreWeave) translated onto Kiln's services.
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../api/services.js';
import type { ArtifactLinks } from '../../boot/http/artifact-links.js';

export interface NcoreSettings {
  defaultImageType: string;
  defaultImageTag: string;
  defaultPayload: string;
}

export interface NcoreRouteOptions {
  services: Services;
  links: ArtifactLinks;
  settings: NcoreSettings;
  publicUrl: string | null;
}

export const ncoreRoutes: FastifyPluginAsync<NcoreRouteOptions> = async () => {};
