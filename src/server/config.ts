// Kiln's one configuration: defaults < kiln.yaml < KILN_* environment < command-line flags.
// Read once at the entry point, validated with every problem reported together, then frozen.
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { isIP } from 'node:net';
import { parseS3Url } from '../blobs/s3/s3-url.js';
import { parsePortRange, type CustomizeSettings } from '../jobs/customize/customize-settings.js';

type Kind = 'string' | 'int' | 'bool' | 'listen' | 'url' | 'level' | 'optional-listen' | 'optional-url' | 'path' | 'optional-string' | 'optional-pg-url' | 'optional-s3-url' | 'enum';

interface Setting {
  key: string;
  env: string;
  flag: string;
  kind: Kind;
  default: string | number | boolean | null;
  min?: number;
  max?: number;
  /** For kind 'enum'. */
  values?: readonly string[];
  doc: string;
}

/** Every setting, once: the README's configuration table and the `serve` flags are made from this list. */
export const SETTINGS: readonly Setting[] = [
  { key: 'listen', env: 'KILN_LISTEN', flag: '--listen', kind: 'listen', default: '0.0.0.0:8080', doc: 'HOST:PORT for the admin API and (unless boot.listen is set) the boot endpoints' },
  { key: 'dataDir', env: 'KILN_DATA_DIR', flag: '--data-dir', kind: 'path', default: './kiln-data', doc: 'data directory: kiln.db (SQLite), blobs/, admin.token (with PostgreSQL and S3: admin.token only)' },
  { key: 'publicUrl', env: 'KILN_PUBLIC_URL', flag: '--public-url', kind: 'optional-url', default: null, doc: 'base URL machines use to reach the boot endpoints (default: from each request\'s Host header)' },
  { key: 'trustProxy', env: 'KILN_TRUST_PROXY', flag: '--trust-proxy', kind: 'optional-string', default: null, doc: 'comma-separated addresses or CIDRs of load balancers whose X-Forwarded-For gives the client address' },
  { key: 'logLevel', env: 'KILN_LOG_LEVEL', flag: '--log-level', kind: 'level', default: 'info', doc: 'fatal, error, warn, info, debug, trace or silent' },
  { key: 'workers', env: 'KILN_WORKERS', flag: '--workers', kind: 'int', default: 1, min: 1, max: 64, doc: 'server processes sharing the listeners (one per core suits boot storms; caches stay exact across them)' },
  { key: 'backlog', env: 'KILN_BACKLOG', flag: '--backlog', kind: 'int', default: 4096, min: 1, max: 65535, doc: 'listen backlog; Node\'s default 511 reset 8% of a 1,000-machine boot storm here' },
  { key: 'shutdownTimeoutMs', env: 'KILN_SHUTDOWN_TIMEOUT_MS', flag: '--shutdown-timeout-ms', kind: 'int', default: 10000, min: 0, max: 600000, doc: 'on SIGTERM/SIGINT, how long in-flight requests may finish before connections are cut' },
  { key: 'bodyLimitBytes', env: 'KILN_BODY_LIMIT_BYTES', flag: '--body-limit-bytes', kind: 'int', default: 1048576, min: 1024, max: 67108864, doc: 'largest JSON request body (artifact uploads stream and have no limit)' },
  { key: 'apiDocs', env: 'KILN_API_DOCS', flag: '--api-docs', kind: 'bool', default: true, doc: 'serve the interactive API docs at /api/docs' },
  { key: 'database.url', env: 'KILN_DATABASE_URL', flag: '--database-url', kind: 'optional-pg-url', default: null, doc: 'PostgreSQL URL (postgres://user:password@host:5432/kiln) for running several replicas; unset: SQLite in dataDir' },
  { key: 'database.poolMax', env: 'KILN_DATABASE_POOL_MAX', flag: '--database-pool-max', kind: 'int', default: 10, min: 1, max: 1000, doc: 'PostgreSQL connections per replica' },
  { key: 'database.statementTimeoutMs', env: 'KILN_DATABASE_STATEMENT_TIMEOUT_MS', flag: '--database-statement-timeout-ms', kind: 'int', default: 30000, min: 100, max: 3600000, doc: 'PostgreSQL statement timeout; a statement running longer fails with 503 KILN_STORE_UNAVAILABLE' },
  { key: 'database.connectTimeoutMs', env: 'KILN_DATABASE_CONNECT_TIMEOUT_MS', flag: '--database-connect-timeout-ms', kind: 'int', default: 5000, min: 100, max: 600000, doc: 'how long a request waits for a PostgreSQL connection before 503 KILN_STORE_UNAVAILABLE' },
  { key: 'database.migrate', env: 'KILN_DATABASE_MIGRATE', flag: '--database-migrate', kind: 'bool', default: true, doc: 'apply pending schema migrations at start (replicas take turns); false: refuse to start on an outdated schema (run `kiln db migrate`)' },
  { key: 'blobs.url', env: 'KILN_BLOB_URL', flag: '--blob-url', kind: 'optional-s3-url', default: null, doc: 'S3 bucket and prefix for artifacts (s3://bucket/prefix); unset: dataDir/blobs' },
  { key: 'blobs.s3.endpoint', env: 'KILN_S3_ENDPOINT', flag: '--s3-endpoint', kind: 'optional-url', default: null, doc: 'S3 endpoint for MinIO, Ceph RGW and the like (unset: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)' },
  { key: 'blobs.s3.region', env: 'KILN_S3_REGION', flag: '--s3-region', kind: 'optional-string', default: null, doc: 'S3 region (unset: AWS_REGION, else us-east-1)' },
  { key: 'blobs.s3.forcePathStyle', env: 'KILN_S3_FORCE_PATH_STYLE', flag: '--s3-force-path-style', kind: 'bool', default: false, doc: 'path-style bucket addressing (most self-hosted S3 servers need it)' },
  { key: 'blobs.s3.accessKeyId', env: 'KILN_S3_ACCESS_KEY_ID', flag: '--s3-access-key-id', kind: 'optional-string', default: null, doc: 'S3 access key (unset: the AWS default chain: AWS_ACCESS_KEY_ID, profiles, instance roles)' },
  { key: 'blobs.s3.secretAccessKey', env: 'KILN_S3_SECRET_ACCESS_KEY', flag: '--s3-secret-access-key', kind: 'optional-string', default: null, doc: 'S3 secret key, with blobs.s3.accessKeyId' },
  { key: 'blobs.trashRetentionHours', env: 'KILN_BLOBS_TRASH_RETENTION_HOURS', flag: '--blobs-trash-retention-hours', kind: 'int', default: 24, min: 0, max: 87600, doc: 'purged artifacts stay restorable in the blob store\'s trash this long' },
  { key: 'sqliteCacheMiB', env: 'KILN_SQLITE_CACHE_MIB', flag: '--sqlite-cache-mib', kind: 'int', default: 64, min: 2, max: 65536, doc: 'SQLite page cache size, per connection: the server\'s own and its boot event writer\'s each get this much' },
  { key: 'boot.listen', env: 'KILN_BOOT_LISTEN', flag: '--boot-listen', kind: 'optional-listen', default: null, doc: 'separate HOST:PORT for the boot endpoints only (the admin API then stays on listen)' },
  { key: 'boot.enrollUnknown', env: 'KILN_BOOT_ENROLL_UNKNOWN', flag: '--boot-enroll-unknown', kind: 'bool', default: true, doc: 'enroll machines Kiln has never seen as discovered; off for a closed fleet (strangers get a script saying why)' },
  { key: 'boot.signUrls', env: 'KILN_BOOT_SIGN_URLS', flag: '--boot-sign-urls', kind: 'bool', default: false, doc: 'artifact URLs in boot scripts carry an expiring HMAC signature; unsigned fetches get 403' },
  { key: 'boot.urlTtlSeconds', env: 'KILN_BOOT_URL_TTL_SECONDS', flag: '--boot-url-ttl-seconds', kind: 'int', default: 3600, min: 10, max: 604800, doc: 'lifetime of signed artifact URLs' },
  { key: 'boot.retries', env: 'KILN_BOOT_RETRIES', flag: '--boot-retries', kind: 'int', default: 5, min: 1, max: 100, doc: 'download attempts in a boot script before it gives up and reboots' },
  { key: 'boot.retryDelaySeconds', env: 'KILN_BOOT_RETRY_DELAY_SECONDS', flag: '--boot-retry-delay-seconds', kind: 'int', default: 5, min: 0, max: 3600, doc: 'pause between attempts' },
  { key: 'boot.noPlanDelaySeconds', env: 'KILN_BOOT_NO_PLAN_DELAY_SECONDS', flag: '--boot-no-plan-delay-seconds', kind: 'int', default: 30, min: 1, max: 86400, doc: 'a machine with nothing to boot asks again after this long' },
  { key: 'boot.artifactDelivery', env: 'KILN_BOOT_ARTIFACT_DELIVERY', flag: '--boot-artifact-delivery', kind: 'enum', values: ['proxy', 'redirect'], default: 'proxy', doc: 'proxy: Kiln streams artifacts (Range passed through); redirect: 302 to a presigned S3 URL (needs blobs.url)' },
  { key: 'boot.presignTtlSeconds', env: 'KILN_BOOT_PRESIGN_TTL_SECONDS', flag: '--boot-presign-ttl-seconds', kind: 'int', default: 900, min: 10, max: 604800, doc: 'lifetime of presigned S3 URLs handed to machines in redirect mode' },
  { key: 'boot.memoryCacheMiB', env: 'KILN_BOOT_MEMORY_CACHE_MIB', flag: '--boot-memory-cache-mib', kind: 'int', default: 512, min: 0, max: 1048576, doc: 'per server process, artifacts of at most half this size are kept in memory once read, so a boot storm reads each kernel and initrd once (0: off)' },
  { key: 'pxe.enabled', env: 'KILN_PXE', flag: '--pxe', kind: 'bool', default: false, doc: 'answer PXE and UEFI HTTP boot clients with Kiln\'s own proxyDHCP (UDP 67, 4011) and TFTP (UDP 69); the site\'s DHCP keeps handing out addresses' },
  { key: 'pxe.address', env: 'KILN_PXE_ADDRESS', flag: '--pxe-address', kind: 'string', default: '0.0.0.0', doc: 'address the proxyDHCP and TFTP sockets bind to (0.0.0.0 is needed to hear DHCP broadcasts)' },
  { key: 'pxe.serverIp', env: 'KILN_PXE_SERVER_IP', flag: '--pxe-server-ip', kind: 'optional-string', default: null, doc: 'this host\'s IPv4 address on the machines\' network (DHCP server id and TFTP server); required with pxe.enabled' },
  { key: 'pxe.dhcpPort', env: 'KILN_PXE_DHCP_PORT', flag: '--pxe-dhcp-port', kind: 'int', default: 67, min: 0, max: 65535, doc: 'proxyDHCP port for broadcast DISCOVERs' },
  { key: 'pxe.pxePort', env: 'KILN_PXE_PORT', flag: '--pxe-port', kind: 'int', default: 4011, min: 0, max: 65535, doc: 'PXE boot server port (unicast REQUESTs)' },
  { key: 'pxe.tftpPort', env: 'KILN_TFTP_PORT', flag: '--tftp-port', kind: 'int', default: 69, min: 0, max: 65535, doc: 'TFTP port' },
  { key: 'pxe.tftpRoot', env: 'KILN_TFTP_ROOT', flag: '--tftp-root', kind: 'path', default: '/usr/lib/ipxe', doc: 'directory of boot binaries served read-only over TFTP and at /boot/files/ (Debian package ipxe installs them here)' },
  { key: 'pxe.biosFile', env: 'KILN_PXE_BIOS_FILE', flag: '--pxe-bios-file', kind: 'string', default: 'undionly.kpxe', doc: 'boot file for BIOS PXE clients' },
  { key: 'pxe.uefiX64File', env: 'KILN_PXE_UEFI_X64_FILE', flag: '--pxe-uefi-x64-file', kind: 'string', default: 'snponly.efi', doc: 'boot file for x86-64 UEFI PXE and HTTP boot clients (snponly.efi or ipxe.efi)' },
  { key: 'pxe.uefiArm64File', env: 'KILN_PXE_UEFI_ARM64_FILE', flag: '--pxe-uefi-arm64-file', kind: 'optional-string', default: null, doc: 'boot file for arm64 UEFI clients (unset: they get no answer)' },
  { key: 'compat.ncore.enabled', env: 'KILN_COMPAT_NCORE', flag: '--compat-ncore', kind: 'bool', default: false, doc: 'serve the ncore-api v2 API at /api/v2 (reads open like boot endpoints; writes need a token)' },
  { key: 'compat.ncore.defaultImageType', env: 'KILN_COMPAT_NCORE_DEFAULT_IMAGE_TYPE', flag: '--compat-ncore-default-image-type', kind: 'string', default: 'default', doc: 'ncore ImageType (a Kiln image) for unknown MACs outside any subnet group' },
  { key: 'compat.ncore.defaultImageTag', env: 'KILN_COMPAT_NCORE_DEFAULT_IMAGE_TAG', flag: '--compat-ncore-default-image-tag', kind: 'string', default: 'default', doc: 'ncore ImageTag (a channel of that image) for unknown MACs outside any subnet group' },
  { key: 'compat.ncore.defaultPayload', env: 'KILN_COMPAT_NCORE_DEFAULT_PAYLOAD', flag: '--compat-ncore-default-payload', kind: 'string', default: 'default', doc: 'payload for unknown MACs whose subnet group\'s profile names none' },
  { key: 'compat.pixiecore.enabled', env: 'KILN_COMPAT_PIXIECORE', flag: '--compat-pixiecore', kind: 'bool', default: false, doc: 'answer pixiecore\'s API mode at /v1/boot/<mac> (start pixiecore with --api pointing at Kiln)' },
  { key: 'compat.pixiecore.nextBootWindowSeconds', env: 'KILN_COMPAT_PIXIECORE_NEXT_BOOT_WINDOW_SECONDS', flag: '--compat-pixiecore-next-boot-window-seconds', kind: 'int', default: 300, min: 0, max: 86400, doc: 'pixiecore asks several times per boot: a next boot taken this recently is served again' },
  { key: 'compat.baas.enabled', env: 'KILN_COMPAT_BAAS', flag: '--compat-baas', kind: 'bool', default: false, doc: 'serve the BAAS control server API (machines, users, images, image setups, boot queue)' },
  { key: 'compat.ims.enabled', env: 'KILN_COMPAT_IMS', flag: '--compat-ims', kind: 'bool', default: false, doc: 'serve the Cray IMS API (recipes, images, public keys, jobs; v2, v3 and deleted collections) under compat.ims.prefix' },
  { key: 'compat.ims.prefix', env: 'KILN_COMPAT_IMS_PREFIX', flag: '--compat-ims-prefix', kind: 'string', default: '/apis/ims', doc: 'path prefix of the IMS routes (IMS\'s own gateway path by default)' },
  { key: 'compat.ims.recipeBucket', env: 'KILN_COMPAT_IMS_RECIPE_BUCKET', flag: '--compat-ims-recipe-bucket', kind: 'string', default: 'ims', doc: 'bucket name IMS recipe links use (S3_IMS_BUCKET)' },
  { key: 'compat.ims.imageBucket', env: 'KILN_COMPAT_IMS_IMAGE_BUCKET', flag: '--compat-ims-image-bucket', kind: 'string', default: 'boot-images', doc: 'bucket name of image artifacts and manifests, where job results are written (S3_BOOT_IMAGES_BUCKET)' },
  { key: 'compat.baas.prefix', env: 'KILN_COMPAT_BAAS_PREFIX', flag: '--compat-baas-prefix', kind: 'optional-string', default: null, doc: 'path prefix for the BAAS routes (e.g. /baas); unset: at the root, as the original' },
  { key: 'login.provider', env: 'KILN_LOGIN_PROVIDER', flag: '--login-provider', kind: 'enum', values: ['none', 'oidc', 'github'], default: 'none', doc: 'browser login: none, oidc (any OpenID Connect provider) or github (GitHub OAuth app)' },
  { key: 'login.issuer', env: 'KILN_LOGIN_ISSUER', flag: '--login-issuer', kind: 'optional-url', default: null, doc: 'OIDC issuer URL (discovery at /.well-known/openid-configuration); required with login.provider oidc' },
  { key: 'login.clientId', env: 'KILN_LOGIN_CLIENT_ID', flag: '--login-client-id', kind: 'optional-string', default: null, doc: 'OAuth client id registered with the provider' },
  { key: 'login.clientSecret', env: 'KILN_LOGIN_CLIENT_SECRET', flag: '--login-client-secret', kind: 'optional-string', default: null, doc: 'OAuth client secret' },
  { key: 'login.defaultRole', env: 'KILN_LOGIN_DEFAULT_ROLE', flag: '--login-default-role', kind: 'enum', values: ['viewer', 'operator', 'admin'], default: 'viewer', doc: 'role of a user created by their first login (an admin can raise it)' },
  { key: 'login.sessionTtlHours', env: 'KILN_LOGIN_SESSION_TTL_HOURS', flag: '--login-session-ttl-hours', kind: 'int', default: 8, min: 1, max: 8760, doc: 'how long a login session lasts' },
  { key: 'login.secureCookie', env: 'KILN_LOGIN_SECURE_COOKIE', flag: '--login-secure-cookie', kind: 'bool', default: true, doc: 'mark the session cookie Secure (browsers then send it over HTTPS only; put Kiln behind TLS)' },
  { key: 'customize.address', env: 'KILN_CUSTOMIZE_ADDRESS', flag: '--customize-address', kind: 'string', default: '127.0.0.1', doc: 'IP address the SSH server of a customize session listens on, on the worker running it (0.0.0.0: every interface)' },
  { key: 'customize.host', env: 'KILN_CUSTOMIZE_HOST', flag: '--customize-host', kind: 'optional-string', default: null, doc: 'host name or address users are told to ssh to (default: customize.address, or the worker\'s host name when that is 0.0.0.0 or ::)' },
  { key: 'customize.ports', env: 'KILN_CUSTOMIZE_PORTS', flag: '--customize-ports', kind: 'string', default: '32200-32299', doc: 'ports customize sessions may listen on (FIRST-LAST), one per running session' },
  { key: 'customize.sshd', env: 'KILN_CUSTOMIZE_SSHD', flag: '--customize-sshd', kind: 'path', default: '/usr/sbin/sshd', doc: 'the worker\'s OpenSSH server (Debian package openssh-server); customize sessions run it in a container' },
  { key: 'events.flushIntervalMs', env: 'KILN_EVENTS_FLUSH_INTERVAL_MS', flag: '--events-flush-interval-ms', kind: 'int', default: 50, min: 1, max: 10000, doc: 'boot events are written in batches at most this far apart' },
  { key: 'events.lastSeenResolutionMs', env: 'KILN_EVENTS_LAST_SEEN_RESOLUTION_MS', flag: '--events-last-seen-resolution-ms', kind: 'int', default: 10000, min: 0, max: 3600000, doc: 'a machine\'s last seen is rewritten at most this often while its state stays the same (every event is still recorded; 0: on every event)' },
  { key: 'jobs.inProcess', env: 'KILN_JOBS_IN_PROCESS', flag: '--jobs-in-process', kind: 'bool', default: true, doc: 'kiln serve runs jobs (image builds) itself; false: only `kiln worker` processes run them' },
  { key: 'jobs.concurrency', env: 'KILN_JOBS_CONCURRENCY', flag: '--jobs-concurrency', kind: 'int', default: 1, min: 1, max: 64, doc: 'jobs one worker runs at once; builds keep a 2-core machine busy (debootstrap, mksquashfs), so raise it on bigger build hosts' },
  { key: 'jobs.types', env: 'KILN_JOBS_TYPES', flag: '--jobs-types', kind: 'optional-string', default: null, doc: 'comma-separated job types this worker runs (unset: all)' },
  { key: 'jobs.workDir', env: 'KILN_JOBS_WORK_DIR', flag: '--jobs-work-dir', kind: 'optional-string', default: null, doc: 'where jobs get their private work directories (unset: dataDir/work); builds need room here' },
  { key: 'jobs.leaseSeconds', env: 'KILN_JOBS_LEASE_SECONDS', flag: '--jobs-lease-seconds', kind: 'int', default: 30, min: 2, max: 3600, doc: 'a worker that stops renewing its hold on a job for this long (crashed, cut off) loses it: the job is retried or fails' },
  { key: 'jobs.heartbeatSeconds', env: 'KILN_JOBS_HEARTBEAT_SECONDS', flag: '--jobs-heartbeat-seconds', kind: 'int', default: 3, min: 1, max: 1800, doc: 'how often a worker renews its jobs\' leases and checks for cancel requests (at most half the lease)' },
  { key: 'jobs.pollIntervalMs', env: 'KILN_JOBS_POLL_INTERVAL_MS', flag: '--jobs-poll-interval-ms', kind: 'int', default: 1000, min: 10, max: 60000, doc: 'how often an idle worker looks for queued jobs (a job created on the same process starts at once)' },
  { key: 'jobs.shutdownGraceSeconds', env: 'KILN_JOBS_SHUTDOWN_GRACE_SECONDS', flag: '--jobs-shutdown-grace-seconds', kind: 'int', default: 5, min: 0, max: 3600, doc: 'on shutdown, how long running jobs may finish before they are stopped and queued again' },
];

export interface KilnConfig {
  listen: { host: string; port: number };
  dataDir: string;
  publicUrl: string | null;
  trustProxy: string[];
  logLevel: string;
  workers: number;
  backlog: number;
  shutdownTimeoutMs: number;
  bodyLimitBytes: number;
  apiDocs: boolean;
  sqliteCacheMiB: number;
  database: { url: string | null; poolMax: number; statementTimeoutMs: number; connectTimeoutMs: number; migrate: boolean };
  blobs: {
    url: { bucket: string; prefix: string } | null;
    trashRetentionHours: number;
    s3: { endpoint: string | null; region: string | null; forcePathStyle: boolean; accessKeyId: string | null; secretAccessKey: string | null };
  };
  boot: {
    listen: { host: string; port: number } | null;
    enrollUnknown: boolean;
    signUrls: boolean;
    urlTtlSeconds: number;
    retries: number;
    retryDelaySeconds: number;
    noPlanDelaySeconds: number;
    artifactDelivery: 'proxy' | 'redirect';
    presignTtlSeconds: number;
    memoryCacheMiB: number;
  };
  pxe: {
    enabled: boolean; address: string; serverIp: string | null; dhcpPort: number; pxePort: number; tftpPort: number; tftpRoot: string;
    biosFile: string; uefiX64File: string; uefiArm64File: string | null;
  };
  events: { flushIntervalMs: number; lastSeenResolutionMs: number };
  jobs: {
    inProcess: boolean; concurrency: number; types: string[] | null; workDir: string | null; leaseSeconds: number; heartbeatSeconds: number;
    pollIntervalMs: number; shutdownGraceSeconds: number;
  };
  compat: {
    ncore: { enabled: boolean; defaultImageType: string; defaultImageTag: string; defaultPayload: string };
    pixiecore: { enabled: boolean; nextBootWindowSeconds: number };
    baas: { enabled: boolean; prefix: string };
    ims: { enabled: boolean; prefix: string; recipeBucket: string; imageBucket: string };
  };
  login: {
    provider: 'none' | 'oidc' | 'github';
    issuer: string | null;
    clientId: string | null;
    clientSecret: string | null;
    defaultRole: 'viewer' | 'operator' | 'admin';
    sessionTtlHours: number;
    secureCookie: boolean;
  };
  customize: CustomizeSettings;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseListen(v: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(v.trim());
  if (m === null) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!), port };
}

function convert(s: Setting, raw: unknown, source: string, problems: string[]): unknown {
  const where = `${s.key} (from ${source})`;
  if (raw === null && s.kind.startsWith('optional')) return null;
  const text = typeof raw === 'string' ? raw.trim() : raw;
  switch (s.kind) {
    case 'int': {
      const n = typeof text === 'number' ? text : typeof text === 'string' && /^-?\d+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(n)) return void problems.push(`${where}: want an integer, got ${JSON.stringify(raw)}`);
      if ((s.min !== undefined && n < s.min) || (s.max !== undefined && n > s.max)) return void problems.push(`${where}: ${n} is outside ${s.min}..${s.max}`);
      return n;
    }
    case 'bool': {
      if (typeof text === 'boolean') return text;
      if (typeof text === 'string' && /^(true|1|yes|on)$/i.test(text)) return true;
      if (typeof text === 'string' && /^(false|0|no|off)$/i.test(text)) return false;
      return void problems.push(`${where}: want true or false, got ${JSON.stringify(raw)}`);
    }
    case 'listen':
    case 'optional-listen': {
      if (s.kind === 'optional-listen' && text === '') return null;
      const l = typeof text === 'string' ? parseListen(text) : null;
      if (l === null) return void problems.push(`${where}: want HOST:PORT (e.g. 0.0.0.0:8080), got ${JSON.stringify(raw)}`);
      return l;
    }
    case 'url':
    case 'optional-url': {
      if (s.kind === 'optional-url' && text === '') return null;
      try {
        const u = new URL(String(text));
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
        if (u.search !== '' || u.hash !== '' || !/^[A-Za-z0-9._~:/[\]-]+$/.test(u.href)) throw new Error('chars');
        return u.href.replace(/\/+$/, '');
      } catch {
        return void problems.push(`${where}: want an http(s) URL without query, got ${JSON.stringify(raw)}`);
      }
    }
    case 'optional-string':
      if (text === '') return null;
      if (typeof text !== 'string') return void problems.push(`${where}: want a string`);
      return text;
    case 'enum':
      if (typeof text !== 'string' || !(s.values ?? []).includes(text)) return void problems.push(`${where}: want one of ${(s.values ?? []).join(', ')}, got ${JSON.stringify(raw)}`);
      return text;
    case 'optional-pg-url': {
      if (text === '') return null;
      try {
        const u = new URL(String(text));
        if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('scheme');
        if (u.hostname === '' && !u.searchParams.has('host')) throw new Error('host');
        return String(text);
      } catch {
        // Never echo the value: it may hold a password.
        return void problems.push(`${where}: want postgres://user:password@host:port/database`);
      }
    }
    case 'optional-s3-url': {
      if (text === '') return null;
      const u = typeof text === 'string' ? parseS3Url(text) : null;
      if (u === null) return void problems.push(`${where}: want s3://bucket or s3://bucket/prefix (bucket: 3-63 of a-z 0-9 . -), got ${JSON.stringify(raw)}`);
      return u;
    }
    case 'level':
      if (typeof text !== 'string' || !LEVELS.includes(text)) return void problems.push(`${where}: want one of ${LEVELS.join(', ')}`);
      return text;
    case 'string':
    case 'path':
      if (typeof text !== 'string' || text === '') return void problems.push(`${where}: want a non-empty string`);
      return text;
  }
}

function flatten(obj: unknown, prefix: string, out: Map<string, unknown>, problems: string[], file: string): void {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    problems.push(`${file}: ${prefix === '' ? 'the file' : prefix} must be a mapping`);
    return;
  }
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out, problems, file);
    else out.set(key, v);
  }
}

export interface ConfigSources {
  /** Path given with --config / KILN_CONFIG; when absent, ./kiln.yaml is read if it exists. */
  file?: string | undefined;
  env: Record<string, string | undefined>;
  /** Flag values by setting key (as commander parsed them). */
  flags: Record<string, string | boolean | undefined>;
  cwd: string;
}

export function loadConfig(src: ConfigSources): KilnConfig {
  const problems: string[] = [];
  const values = new Map<string, unknown>();
  for (const s of SETTINGS) values.set(s.key, s.kind === 'listen' || s.kind === 'optional-listen' ? (s.default === null ? null : parseListen(String(s.default))) : s.default);

  const explicit = src.file ?? src.env.KILN_CONFIG;
  const path = explicit ?? `${src.cwd}/kiln.yaml`;
  if (explicit !== undefined || existsSync(path)) {
    try {
      const doc: unknown = parseYaml(readFileSync(path, 'utf8'));
      const flat = new Map<string, unknown>();
      if (doc !== null && doc !== undefined) flatten(doc, '', flat, problems, path);
      for (const [k, v] of flat) {
        const s = SETTINGS.find((x) => x.key === k);
        if (s === undefined) problems.push(`${path}: unknown key ${k}`);
        else {
          const c = convert(s, v, path, problems);
          if (c !== undefined) values.set(k, c);
        }
      }
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  for (const s of SETTINGS) {
    const e = src.env[s.env];
    if (e !== undefined) {
      const c = convert(s, e, s.env, problems);
      if (c !== undefined) values.set(s.key, c);
    }
  }
  for (const s of SETTINGS) {
    const f = src.flags[s.key];
    if (f !== undefined) {
      const c = convert(s, f, s.flag, problems);
      if (c !== undefined) values.set(s.key, c);
    }
  }
  const listen = values.get('listen') as KilnConfig['listen'];
  const bootListen = values.get('boot.listen') as KilnConfig['boot']['listen'];
  if (bootListen !== null && bootListen.port === listen.port && bootListen.port !== 0 && (bootListen.host === listen.host || bootListen.host === '0.0.0.0' || listen.host === '0.0.0.0')) {
    problems.push('boot.listen: must differ from listen (leave it unset to serve boot and admin on one port)');
  }
  for (const p of ((values.get('trustProxy') as string | null) ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(p)) problems.push(`trustProxy: ${JSON.stringify(p)} is not an address or CIDR`);
  }
  const serverIp = values.get('pxe.serverIp') as string | null;
  if (serverIp !== null && !/^(\d{1,3})(\.\d{1,3}){3}$/.test(serverIp)) problems.push(`pxe.serverIp: want an IPv4 address, got ${JSON.stringify(serverIp)}`);
  if (values.get('pxe.enabled') === true && serverIp === null) problems.push('pxe.serverIp: required with pxe.enabled (the address machines reach this host at)');
  for (const k of ['pxe.biosFile', 'pxe.uefiX64File', 'pxe.uefiArm64File']) {
    const f = values.get(k) as string | null;
    if (f !== null && !/^[A-Za-z0-9._-]{1,128}$/.test(f)) problems.push(`${k}: want a file name in pxe.tftpRoot, got ${JSON.stringify(f)}`);
  }
  const blobUrl = values.get('blobs.url');
  if (values.get('boot.artifactDelivery') === 'redirect' && blobUrl === null) {
    problems.push('boot.artifactDelivery: redirect needs an S3 blob store (blobs.url); the filesystem store can only proxy');
  }
  if ((values.get('blobs.s3.accessKeyId') === null) !== (values.get('blobs.s3.secretAccessKey') === null)) {
    problems.push('blobs.s3.accessKeyId and blobs.s3.secretAccessKey: set both or neither');
  }
  const loginProvider = values.get('login.provider');
  if (loginProvider !== 'none' && (values.get('login.clientId') === null || values.get('login.clientSecret') === null)) {
    problems.push(`login.clientId and login.clientSecret: required with login.provider ${String(loginProvider)}`);
  }
  if (loginProvider === 'oidc' && values.get('login.issuer') === null) problems.push('login.issuer: required with login.provider oidc');
  const baasPrefix = values.get('compat.baas.prefix') as string | null;
  if (baasPrefix !== null && !/^(\/[A-Za-z0-9._-]+)+$/.test(baasPrefix)) problems.push(`compat.baas.prefix: want a path such as /baas, got ${JSON.stringify(baasPrefix)}`);
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(values.get('compat.ims.prefix') as string)) problems.push(`compat.ims.prefix: want a path such as /apis/ims, got ${JSON.stringify(values.get('compat.ims.prefix'))}`);
  for (const k of ['compat.ims.recipeBucket', 'compat.ims.imageBucket']) {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(values.get(k) as string)) problems.push(`${k}: want an S3 bucket name (3-63 lower-case letters, digits, "." and "-"), got ${JSON.stringify(values.get(k))}`);
  }
  const jobTypes = values.get('jobs.types') === null ? null : (values.get('jobs.types') as string).split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const t of jobTypes ?? []) if (!/^[a-z][a-z0-9-]{0,62}$/.test(t)) problems.push(`jobs.types: ${JSON.stringify(t)} is not a job type name`);
  if ((values.get('jobs.heartbeatSeconds') as number) * 2 > (values.get('jobs.leaseSeconds') as number)) problems.push('jobs.heartbeatSeconds: at most half of jobs.leaseSeconds (a late heartbeat must not lose the lease)');
  const customizePorts = parsePortRange(values.get('customize.ports') as string);
  if (customizePorts === null) problems.push(`customize.ports: want FIRST-LAST within 1-65535 (e.g. 32200-32299), got ${JSON.stringify(values.get('customize.ports'))}`);
  if (isIP(values.get('customize.address') as string) === 0) problems.push(`customize.address: want an IP address, got ${JSON.stringify(values.get('customize.address'))}`);
  if (problems.length > 0) throw new ConfigError(problems);
  const get = <T>(k: string) => values.get(k) as T;
  return Object.freeze({
    listen,
    dataDir: get<string>('dataDir'),
    publicUrl: get<string | null>('publicUrl'),
    trustProxy: Object.freeze((get<string | null>('trustProxy') ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '')) as string[],
    logLevel: get<string>('logLevel'),
    workers: get<number>('workers'),
    backlog: get<number>('backlog'),
    shutdownTimeoutMs: get<number>('shutdownTimeoutMs'),
    bodyLimitBytes: get<number>('bodyLimitBytes'),
    apiDocs: get<boolean>('apiDocs'),
    sqliteCacheMiB: get<number>('sqliteCacheMiB'),
    database: Object.freeze({
      url: get<string | null>('database.url'),
      poolMax: get<number>('database.poolMax'),
      statementTimeoutMs: get<number>('database.statementTimeoutMs'),
      connectTimeoutMs: get<number>('database.connectTimeoutMs'),
      migrate: get<boolean>('database.migrate'),
    }),
    blobs: Object.freeze({
      url: get<{ bucket: string; prefix: string } | null>('blobs.url'),
      trashRetentionHours: get<number>('blobs.trashRetentionHours'),
      s3: Object.freeze({
        endpoint: get<string | null>('blobs.s3.endpoint'),
        region: get<string | null>('blobs.s3.region'),
        forcePathStyle: get<boolean>('blobs.s3.forcePathStyle'),
        accessKeyId: get<string | null>('blobs.s3.accessKeyId'),
        secretAccessKey: get<string | null>('blobs.s3.secretAccessKey'),
      }),
    }),
    boot: Object.freeze({
      listen: bootListen,
      enrollUnknown: get<boolean>('boot.enrollUnknown'),
      signUrls: get<boolean>('boot.signUrls'),
      urlTtlSeconds: get<number>('boot.urlTtlSeconds'),
      retries: get<number>('boot.retries'),
      retryDelaySeconds: get<number>('boot.retryDelaySeconds'),
      noPlanDelaySeconds: get<number>('boot.noPlanDelaySeconds'),
      artifactDelivery: get<'proxy' | 'redirect'>('boot.artifactDelivery'),
      presignTtlSeconds: get<number>('boot.presignTtlSeconds'),
      memoryCacheMiB: get<number>('boot.memoryCacheMiB'),
    }),
    pxe: Object.freeze({
      enabled: get<boolean>('pxe.enabled'),
      address: get<string>('pxe.address'),
      serverIp,
      dhcpPort: get<number>('pxe.dhcpPort'),
      pxePort: get<number>('pxe.pxePort'),
      tftpPort: get<number>('pxe.tftpPort'),
      tftpRoot: get<string>('pxe.tftpRoot'),
      biosFile: get<string>('pxe.biosFile'),
      uefiX64File: get<string>('pxe.uefiX64File'),
      uefiArm64File: get<string | null>('pxe.uefiArm64File'),
    }),
    events: Object.freeze({ flushIntervalMs: get<number>('events.flushIntervalMs'), lastSeenResolutionMs: get<number>('events.lastSeenResolutionMs') }),
    jobs: Object.freeze({
      inProcess: get<boolean>('jobs.inProcess'),
      concurrency: get<number>('jobs.concurrency'),
      types: jobTypes === null ? null : (Object.freeze(jobTypes) as string[]),
      workDir: get<string | null>('jobs.workDir'),
      leaseSeconds: get<number>('jobs.leaseSeconds'),
      heartbeatSeconds: get<number>('jobs.heartbeatSeconds'),
      pollIntervalMs: get<number>('jobs.pollIntervalMs'),
      shutdownGraceSeconds: get<number>('jobs.shutdownGraceSeconds'),
    }),
    compat: Object.freeze({
      ncore: Object.freeze({
        enabled: get<boolean>('compat.ncore.enabled'),
        defaultImageType: get<string>('compat.ncore.defaultImageType'),
        defaultImageTag: get<string>('compat.ncore.defaultImageTag'),
        defaultPayload: get<string>('compat.ncore.defaultPayload'),
      }),
      pixiecore: Object.freeze({ enabled: get<boolean>('compat.pixiecore.enabled'), nextBootWindowSeconds: get<number>('compat.pixiecore.nextBootWindowSeconds') }),
      baas: Object.freeze({ enabled: get<boolean>('compat.baas.enabled'), prefix: baasPrefix ?? '' }),
      ims: Object.freeze({
        enabled: get<boolean>('compat.ims.enabled'), prefix: get<string>('compat.ims.prefix'),
        recipeBucket: get<string>('compat.ims.recipeBucket'), imageBucket: get<string>('compat.ims.imageBucket'),
      }),
    }),
    login: Object.freeze({
      provider: get<'none' | 'oidc' | 'github'>('login.provider'),
      issuer: get<string | null>('login.issuer'),
      clientId: get<string | null>('login.clientId'),
      clientSecret: get<string | null>('login.clientSecret'),
      defaultRole: get<'viewer' | 'operator' | 'admin'>('login.defaultRole'),
      sessionTtlHours: get<number>('login.sessionTtlHours'),
      secureCookie: get<boolean>('login.secureCookie'),
    }),
    customize: Object.freeze({
      address: get<string>('customize.address'),
      host: get<string | null>('customize.host'),
      ports: Object.freeze(customizePorts!),
      sshd: get<string>('customize.sshd'),
    }),
  });
}
