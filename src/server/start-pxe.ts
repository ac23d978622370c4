// Kiln's own boot protocol servers: proxyDHCP (boot file by client architecture) and read-only TFTP,
// wired to the boot service so every PXE request lands in the machine's timeline.
import { realpath } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import type { BootService } from '../core/services/boot-service.js';
import type { Arch } from '../core/types.js';
import { normalizeUuid } from '../core/validate.js';
import { startProxyDhcp, type PxeClientEvent } from '../pxe/dhcp/proxy-dhcp-server.js';
import { startTftpServer } from '../pxe/tftp/tftp-server.js';
import type { KilnConfig } from './config.js';

export interface RunningPxe {
  ports: { dhcp: number; pxe: number; tftp: number };
  close(): Promise<void>;
}

/** RFC 4578 architecture → what Kiln knows of a machine (others: nothing). */
const ARCH_FACTS: Record<number, { arch?: Arch; platform: string }> = {
  0: { platform: 'pcbios' },
  7: { arch: 'x86_64', platform: 'efi' },
  9: { arch: 'x86_64', platform: 'efi' },
  16: { arch: 'x86_64', platform: 'efi' },
  11: { arch: 'aarch64', platform: 'efi' },
  19: { arch: 'aarch64', platform: 'efi' },
};

function uuidOf(raw: string | null): string | undefined {
  if (raw === null) return undefined;
  try {
    return normalizeUuid(raw, 'KILN_MACHINE_INVALID');
  } catch {
    return undefined; // firmware sends junk UUIDs (all zeros, all ones): not an identity
  }
}

export async function startPxe(config: KilnConfig, httpBase: string, boot: BootService, log: FastifyBaseLogger): Promise<RunningPxe> {
  const pxe = config.pxe;
  const pxeLog = log.child({ component: 'pxe' });
  const root = await realpath(pxe.tftpRoot).catch(() => {
    throw new Error(`pxe.tftpRoot ${pxe.tftpRoot} does not exist (install Debian's ipxe package, or point it at a directory of boot binaries)`);
  });
  const onClient = (e: PxeClientEvent) => {
    const facts = { mac: e.mac, uuid: uuidOf(e.uuid), ...(e.arch === null ? {} : ARCH_FACTS[e.arch]) };
    boot.dhcpSeen(facts, { via: e.via, arch: e.arch, vendorClass: e.vendorClass, ipxe: e.isIpxe, bootFile: e.bootFile }).catch((err: unknown) => {
      pxeLog.warn({ err, mac: e.mac }, 'could not record a PXE request');
    });
  };
  const tftp = await startTftpServer({ address: pxe.address, port: pxe.tftpPort, root, log: pxeLog });
  try {
    const dhcp = await startProxyDhcp({
      address: pxe.address,
      ports: { dhcp: pxe.dhcpPort, pxe: pxe.pxePort },
      serverIp: pxe.serverIp!,
      httpBase,
      bootFiles: {
        bios: pxe.biosFile,
        uefiX64: pxe.uefiX64File,
        uefiArm64: pxe.uefiArm64File,
        httpEfiX64: `boot/files/${pxe.uefiX64File}`,
        httpEfiArm64: pxe.uefiArm64File === null ? null : `boot/files/${pxe.uefiArm64File}`,
      },
      onClient,
      log: pxeLog,
    });
    pxeLog.info({ ...dhcp.ports, tftp: tftp.port, root, serverIp: pxe.serverIp }, 'proxyDHCP and TFTP are serving');
    return {
      ports: { ...dhcp.ports, tftp: tftp.port },
      async close() {
        await dhcp.close();
        await tftp.close();
      },
    };
  } catch (err) {
    await tftp.close();
    throw err;
  }
}
