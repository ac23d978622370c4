// pixiecore's API mode: `GET /v1/boot/<mac>` answers `{kernel, initrd, cmdline, message}` for a machine
// with a boot plan, 404 otherwise (pixiecore then ignores the machine). pixiecore asks several times
// per boot, so a next boot it took is served again for a short window instead of being lost.
import type { FastifyPluginAsync } from 'fastify';
import type { Services } from '../../api/services.js';
import type { ArtifactLinks } from '../../boot/http/artifact-links.js';
import { requestBaseUrl } from '../../boot/http/request-base-url.js';
import { tryParseMac } from '../../core/mac.js';

export interface PixiecoreSettings {
  nextBootWindowSeconds: number;
}

export interface PixiecoreRouteOptions {
  services: Services;
  links: ArtifactLinks;
  settings: PixiecoreSettings;
  publicUrl: string | null;
}

/** pixiecore's spec as its Go decoder reads it. */
export interface PixiecoreSpec {
  kernel: string;
  initrd: string[];
  cmdline: string;
  message: string;
}

/** pixiecore runs cmdline through Go's text/template: a literal `{{` must be written as a template action. */
export function escapeGoTemplate(s: string): string {
  return s.replaceAll('{{', '{{"{{"}}');
}

export const pixiecoreRoutes: FastifyPluginAsync<PixiecoreRouteOptions> = async (app, opts) => {
  const { services: s, links } = opts;

  app.get('/v1/boot/:mac', async (req, reply) => {
    const mac = tryParseMac((req.params as { mac: string }).mac);
    if (mac === null) return reply.code(400).type('text/plain; charset=utf-8').send('not a MAC address\n');
    const { machine, outcome } = await s.boot.decide({ mac, address: req.ip }, [], { repeatWindowMs: opts.settings.nextBootWindowSeconds * 1000 });
    if (machine === null || outcome.plan === null) {
      // Any non-200 makes pixiecore leave the machine alone; say why for whoever reads its log.
      return reply.code(404).type('text/plain; charset=utf-8').send(`${outcome.reason}\n`);
    }
    const plan = outcome.plan;
    const base = requestBaseUrl(req, opts.publicUrl);
    const kernel = plan.version.artifacts.find((a) => a.role === 'kernel')!;
    const initrds = plan.version.artifacts.filter((a) => a.role === 'initrd');
    const rootfs = plan.version.artifacts.find((a) => a.role === 'rootfs');
    // pixiecore writes its own initrd= arguments; Kiln adds what its own script would: rootfs and callback.
    const cmdline = [
      plan.version.cmdline.trim(),
      ...plan.profile.kernelArgs,
      ...(rootfs !== undefined ? [`kiln.rootfs=${await links.url(base, rootfs, mac)}`] : []),
      `kiln.callback=${base}/boot/callback?mac=${mac}`,
    ].filter((a) => a !== '');
    const what = plan.channel !== null ? `${plan.image} ${plan.version.version} (channel ${plan.channel})` : `${plan.image} ${plan.version.version}`;
    const spec: PixiecoreSpec = {
      kernel: await links.url(base, kernel, mac),
      initrd: await Promise.all(initrds.map((a) => links.url(base, a, mac))),
      cmdline: escapeGoTemplate(cmdline.join(' ')),
      message: `Kiln: booting ${what} with profile ${plan.profile.name}`,
    };
    return reply.header('Cache-Control', 'no-store').send(spec);
  });
};
