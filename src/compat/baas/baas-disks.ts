// BAAS disk images on Kiln: an image named by its UUID whose integer versions hold one `disk.img`;
// creation (with an empty version 0), streamed uploads and Range-capable downloads.
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Services } from '../../api/services.js';
import { sendArtifact, storedArtifact } from '../../boot/http/send-artifact.js';
import { KilnError } from '../../core/kiln-error.js';
import { diskOf } from '../../core/services/versioned-disk-service.js';
import type { Artifact, Image, ImageSetup, ImageVersion, Labels } from '../../core/types.js';
import { BaasError } from './baas-http.js';
import { toBaasFrozen, toBaasImage, type BaasFrozen, type BaasImage } from './baas-models.js';
import { firstMultipartPart, multipartBoundary } from './multipart-first-part.js';

const OCTETS = 'application/octet-stream';

/** A live image by UUID; `notFound` (the original's words) when there is none. */
export async function findImage(s: Services, uuid: string, notFound: BaasError): Promise<Image> {
  try {
    return await s.images.get(uuid);
  } catch (err) {
    if (err instanceof KilnError && err.code === 'KILN_IMAGE_NOT_FOUND') throw notFound;
    throw err;
  }
}

export async function baasImageOf(s: Services, image: Image): Promise<BaasImage> {
  return toBaasImage(image, await s.setups.disks.versions(image.name));
}

/**
 * A new disk image with an empty version 0. (The original wrote a 512 MiB sparse file, 128 MiB
 * formatted ext4 for machine images; an empty disk costs nothing and the first upload replaces it.)
 */
export async function createDiskImage(s: Services, input: { description: string; labels: Labels; owner: string | null }): Promise<Image> {
  const { artifact } = await s.artifacts.upload(Readable.from([]), { mediaType: OCTETS, expectedSize: 0 });
  return (await s.setups.disks.create(input, artifact)).image;
}

/** Streams the request's raw body (or the first part of a multipart one) into the blob store. */
export async function receiveDisk(s: Services, req: FastifyRequest, multipart: boolean): Promise<Artifact> {
  const raw = (req.body as Readable | undefined) ?? Readable.from([]);
  let body: Readable = raw;
  if (multipart) {
    const boundary = multipartBoundary(req.headers['content-type']);
    if (boundary === null) throw new BaasError(400, 'Cannot parse POST form');
    try {
      body = (await firstMultipartPart(raw, boundary)).body;
    } catch (err) {
      if (err instanceof KilnError && err.code === 'KILN_REQUEST_INVALID') throw new BaasError(400, 'Cannot parse POST form');
      throw err;
    }
  }
  return (await s.artifacts.upload(body, { mediaType: OCTETS })).artifact;
}

/**
 * Sends a version's disk: Range, If-Range and conditional requests as every Kiln artifact, with the
 * original's Content-Type and Content-Disposition.
 */
export async function sendDisk(s: Services, req: FastifyRequest, reply: FastifyReply, image: Image, version: ImageVersion, contentType = 'disk/raw'): Promise<void> {
  const disk = diskOf(version);
  const artifact = await s.artifacts.get(disk.sha256);
  reply.hijack();
  const res = reply.raw;
  res.setHeader('Content-Disposition', `filename=${image.name}-${version.version}.img`);
  // No date says when these bytes arrived (an overwrite may reuse an older blob), so Last-Modified is
  // now: If-Range by date then always sends the whole disk, If-Range by ETag resumes exactly.
  const lastModified = s.clock.now();
  await sendArtifact(req.raw, res, storedArtifact(s.artifacts, artifact, { mediaType: contentType, lastModified,
    // A BAAS URL (latest, or a version overwritten in place) may serve other bytes tomorrow: caches must revalidate by ETag.
    cacheControl: 'private, no-cache' }));
}

/** The frozen images of a setup as the original serialises them (images removed meanwhile are left out). */
export async function frozenImagesOf(s: Services, setup: ImageSetup): Promise<BaasFrozen[]> {
  const out: BaasFrozen[] = [];
  for (const f of setup.images) {
    const image = await s.images.get(f.image).catch(() => null);
    if (image !== null) out.push(toBaasFrozen(await baasImageOf(s, image), f.version, f.update));
  }
  return out;
}
