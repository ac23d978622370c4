// proxyDHCP decisions (PXE 2.1, RFC 4578, UEFI HTTP boot): which requests to answer, and with which boot file.
import { DhcpMessageType, DhcpOption, encodeSubOptions, ipToBytes, type DhcpPacket } from './dhcp-codec.js';

export interface PxeBootFiles {
  /** TFTP name for BIOS PXE (arch 0), e.g. `undionly.kpxe`. */
  bios: string;
  /** TFTP name for x86-64 UEFI PXE (arch 7 and 9), e.g. `snponly.efi` or `ipxe.efi`. */
  uefiX64: string;
  /** TFTP name for arm64 UEFI PXE (arch 11); null: such clients get no answer. */
  uefiArm64: string | null;
  /** Path under httpBase of the x86-64 EFI binary for UEFI HTTP boot (arch 16). */
  httpEfiX64: string;
  /** Path under httpBase of the arm64 EFI binary for UEFI HTTP boot (arch 19); null: no answer. */
  httpEfiArm64: string | null;
}

export interface PxePolicyContext {
  /** Our address on the client's segment: option 54, and where clients send port 4011 requests. */
  serverIp: string;
  /** Where the TFTP boot files are (siaddr); defaults to serverIp. */
  tftpServerIp?: string;
  /** Base URL of Kiln's boot HTTP listener, without a trailing slash, e.g. `http://10.0.0.1:8080`. */
  httpBase: string;
  bootFiles: PxeBootFiles;
}

export interface PxeClient {
  mac: string;
  /** RFC 4578 client system architecture (option 93, else from the vendor class), null when not given. */
  arch: number | null;
  vendorClass: string;
  isIpxe: boolean;
  uuid: string | null;
}

/** The listener a request arrived on: `dhcp` is UDP 67 (broadcast DISCOVER), `pxe` is UDP 4011 (unicast REQUEST). */
export type PxePort = 'dhcp' | 'pxe';

export type PxeDecision = { reply: DhcpPacket; client: PxeClient } | { ignore: string };

const PXE_CLIENT = 'PXEClient';
const HTTP_CLIENT = 'HTTPClient';
/** PXE_DISCOVERY_CONTROL bit 3: boot the file named in this packet; skip boot server discovery. */
const PXE_DISCOVERY_CONTROL = 6;
const DISCOVERY_USE_BOOTFILE = 8;
/** The `file` header field holds 127 bytes and a NUL; longer names go in option 67 only. */
const MAX_FILE_FIELD = 127;

/**
 * Decides the proxyDHCP answer to one request. `via` says which port it came in on: on 67 only DISCOVER
 * is ours (a REQUEST there is the client taking the site DHCP server's lease); on 4011 only REQUEST.
 */
export function decidePxeReply(req: DhcpPacket, ctx: PxePolicyContext, via: PxePort = 'dhcp'): PxeDecision {
  if (req.op !== 1) return { ignore: 'not a BOOTREQUEST' };
  const type = req.options.get(DhcpOption.messageType);
  if (type?.length !== 1) return { ignore: 'no DHCP message type' };
  const messageType = type[0]!;
  let replyType: number;
  if (via === 'dhcp' && messageType === DhcpMessageType.discover) replyType = DhcpMessageType.offer;
  else if (via === 'pxe' && messageType === DhcpMessageType.request) replyType = DhcpMessageType.ack;
  else return { ignore: `message type ${messageType} on the ${via === 'dhcp' ? 'DHCP (67)' : 'PXE (4011)'} port is not for a proxy` };

  if (req.htype !== 1 || req.hlen !== 6) return { ignore: `hardware type ${req.htype}/${req.hlen} is not Ethernet` };
  const mac = [...req.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');

  const vendorClass = req.options.get(DhcpOption.vendorClassId)?.toString('latin1') ?? '';
  const kind = vendorClass.startsWith(PXE_CLIENT) ? PXE_CLIENT : vendorClass.startsWith(HTTP_CLIENT) ? HTTP_CLIENT : null;
  if (kind === null) return { ignore: vendorClass === '' ? 'no vendor class: not a PXE client' : `vendor class ${JSON.stringify(vendorClass.slice(0, 64))} is not a PXE client` };

  const arch = clientArch(req, vendorClass);
  const isIpxe = detectIpxe(req);
  const uuidOption = req.options.get(DhcpOption.clientUuid);
  const client: PxeClient = { mac, arch, vendorClass, isIpxe, uuid: uuidOption === undefined ? null : formatUuid(uuidOption) };

  const boot = chooseBootFile(kind, arch, isIpxe, ctx);
  if ('ignore' in boot) return boot;
  const fileBytes = Buffer.byteLength(boot.file, 'latin1');

  const options = new Map<number, Buffer>();
  options.set(DhcpOption.messageType, Buffer.from([replyType]));
  options.set(DhcpOption.serverId, ipToBytes(ctx.serverIp));
  options.set(DhcpOption.vendorClassId, Buffer.from(kind, 'latin1'));
  if (uuidOption !== undefined) options.set(DhcpOption.clientUuid, uuidOption);
  if (kind === PXE_CLIENT) options.set(DhcpOption.vendorSpecific, encodeSubOptions(new Map([[PXE_DISCOVERY_CONTROL, Buffer.from([DISCOVERY_USE_BOOTFILE])]])));
  // HTTP boot and iPXE read option 67 before the header field; PXE ROMs read only the header field.
  if (boot.url || fileBytes > MAX_FILE_FIELD) options.set(DhcpOption.bootfileName, Buffer.from(boot.file, 'latin1'));

  const reply: DhcpPacket = {
    op: 2,
    htype: req.htype,
    hlen: req.hlen,
    hops: 0,
    xid: req.xid,
    secs: 0,
    flags: req.flags,
    ciaddr: req.ciaddr,
    yiaddr: '0.0.0.0', // a proxy never hands out addresses
    siaddr: ctx.tftpServerIp ?? ctx.serverIp,
    giaddr: req.giaddr,
    chaddr: Buffer.from(req.chaddr),
    sname: '',
    file: fileBytes > MAX_FILE_FIELD ? '' : boot.file,
    options,
  };
  return { reply, client };
}

/** RFC 4578 §2.1 types we serve; the rest (IA32 UEFI, Itanium, ARM32...) are left to other servers. */
function chooseBootFile(kind: string, arch: number | null, isIpxe: boolean, ctx: PxePolicyContext): { file: string; url: boolean } | { ignore: string } {
  // Already iPXE: hand it the HTTP script, or it would fetch and run iPXE again, forever.
  if (isIpxe) return { file: `${ctx.httpBase}/boot.ipxe`, url: true };
  const { bootFiles } = ctx;
  if (kind === HTTP_CLIENT) {
    if (arch === 16) return { file: `${ctx.httpBase}/${bootFiles.httpEfiX64}`, url: true };
    if (arch === 19) {
      return bootFiles.httpEfiArm64 === null ? { ignore: 'arm64 UEFI HTTP boot (arch 19) has no boot file configured' } : { file: `${ctx.httpBase}/${bootFiles.httpEfiArm64}`, url: true };
    }
    return { ignore: `HTTP boot for architecture ${arch ?? 'unknown'} is not served` };
  }
  // PXE ROMs from before RFC 4578 send neither option 93 nor an Arch in the vendor class: they are BIOS.
  if (arch === null || arch === 0) return { file: bootFiles.bios, url: false };
  // Arch 9 is EFI Byte Code, but many x86-64 UEFI builds send it by mistake.
  if (arch === 7 || arch === 9) return { file: bootFiles.uefiX64, url: false };
  if (arch === 11) return bootFiles.uefiArm64 === null ? { ignore: 'arm64 UEFI (arch 11) has no boot file configured' } : { file: bootFiles.uefiArm64, url: false };
  return { ignore: `PXE for architecture ${arch} is not served` };
}

function clientArch(req: DhcpPacket, vendorClass: string): number | null {
  const opt = req.options.get(DhcpOption.clientArch);
  // Option 93 may list several types; the first is the one the client is booting as.
  if (opt !== undefined && opt.length >= 2) return opt.readUInt16BE(0);
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/.exec(vendorClass);
  return m === null ? null : Number(m[1]);
}

function detectIpxe(req: DhcpPacket): boolean {
  if (req.options.has(DhcpOption.ipxeEncapsulated)) return true;
  // iPXE sends the bare string "iPXE" rather than RFC 3004's length-prefixed list, so search the bytes.
  return req.options.get(DhcpOption.userClass)?.includes('iPXE', 0, 'latin1') ?? false;
}

/** Option 97 is a type byte (0 = GUID) and 16 bytes, printed here in wire order. */
function formatUuid(opt: Buffer): string | null {
  if (opt.length !== 17 || opt[0] !== 0) return null;
  const h = opt.subarray(1).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
