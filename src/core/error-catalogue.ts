// The one catalogue of Kiln error codes. Edges map `kind` to a transport (HTTP status, CLI exit code);
// docs/errors.md lists the same codes and a test keeps the two equal.

export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'precondition_failed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'range_not_satisfiable'
  | 'unprocessable'
  | 'unavailable'
  | 'internal';

export interface ErrorSpec {
  readonly kind: ErrorKind;
  readonly title: string;
}

export const errorCatalogue = {
  KILN_REQUEST_INVALID: { kind: 'invalid', title: 'The request does not match the schema' },
  KILN_REQUEST_MALFORMED_JSON: { kind: 'invalid', title: 'The request body is not valid JSON' },
  KILN_REQUEST_BODY_TOO_LARGE: { kind: 'too_large', title: 'The request body is larger than allowed' },
  KILN_REQUEST_UNSUPPORTED_MEDIA_TYPE: { kind: 'unsupported_media_type', title: 'The request body has a media type this endpoint does not accept' },
  KILN_ROUTE_NOT_FOUND: { kind: 'not_found', title: 'No such endpoint' },
  KILN_AUTH_REQUIRED: { kind: 'unauthenticated', title: 'A bearer token is required' },
  KILN_AUTH_INVALID_TOKEN: { kind: 'unauthenticated', title: 'The bearer token is unknown or revoked' },
  KILN_AUTH_FORBIDDEN: { kind: 'forbidden', title: "The token's role does not allow this operation" },
  KILN_LOGIN_FAILED: { kind: 'unauthenticated', title: 'The login with the identity provider did not complete' },
  KILN_PRECONDITION_FAILED: { kind: 'precondition_failed', title: 'If-Match does not match the current ETag' },
  KILN_NAME_INVALID: { kind: 'invalid', title: 'A name has characters or a length that Kiln does not accept' },
  KILN_MAC_INVALID: { kind: 'invalid', title: 'Not a MAC address' },
  KILN_MACHINE_NOT_FOUND: { kind: 'not_found', title: 'No such machine' },
  KILN_MACHINE_MAC_TAKEN: { kind: 'conflict', title: 'The MAC address belongs to another machine' },
  KILN_MACHINE_UUID_TAKEN: { kind: 'conflict', title: 'The UUID belongs to another machine' },
  KILN_MACHINE_INVALID: { kind: 'invalid', title: 'A machine field is not acceptable' },
  KILN_IMAGE_NOT_FOUND: { kind: 'not_found', title: 'No such image' },
  KILN_IMAGE_EXISTS: { kind: 'conflict', title: 'An image with this name exists (possibly deleted: restore or purge it)' },
  KILN_IMAGE_DELETED: { kind: 'conflict', title: 'The image is deleted; restore it first' },
  KILN_IMAGE_NOT_DELETED: { kind: 'conflict', title: 'Only a deleted image can be purged' },
  KILN_IMAGE_IN_USE: { kind: 'conflict', title: 'Profiles still refer to the image' },
  KILN_VERSION_NOT_FOUND: { kind: 'not_found', title: 'No such image version' },
  KILN_VERSION_EXISTS: { kind: 'conflict', title: 'The image already has this version; versions are immutable' },
  KILN_VERSION_INVALID: { kind: 'invalid', title: 'A version needs exactly one kernel and artifacts that exist' },
  KILN_CHANNEL_NOT_FOUND: { kind: 'not_found', title: 'No such channel' },
  KILN_CHANNEL_NO_PREVIOUS: { kind: 'conflict', title: 'The channel has no previous version to roll back to' },
  KILN_ARTIFACT_NOT_FOUND: { kind: 'not_found', title: 'No such artifact' },
  KILN_ARTIFACT_DIGEST_MISMATCH: { kind: 'unprocessable', title: 'The uploaded bytes do not have the expected sha256' },
  KILN_ARTIFACT_SIZE_MISMATCH: { kind: 'unprocessable', title: 'The uploaded bytes do not have the expected size' },
  KILN_ARTIFACT_INCOMPLETE: { kind: 'invalid', title: 'The upload ended before all bytes arrived' },
  KILN_ARTIFACT_RANGE_NOT_SATISFIABLE: { kind: 'range_not_satisfiable', title: 'The Range does not overlap the artifact' },
  KILN_PROFILE_NOT_FOUND: { kind: 'not_found', title: 'No such profile' },
  KILN_PROFILE_EXISTS: { kind: 'conflict', title: 'A profile with this name exists' },
  KILN_PROFILE_IN_USE: { kind: 'conflict', title: 'Groups or machines still refer to the profile' },
  KILN_PROFILE_INVALID: { kind: 'invalid', title: 'The profile is not valid (image reference, kernel args or template)' },
  KILN_GROUP_NOT_FOUND: { kind: 'not_found', title: 'No such group' },
  KILN_GROUP_EXISTS: { kind: 'conflict', title: 'A group with this name exists' },
  KILN_GROUP_AMBIGUOUS: { kind: 'conflict', title: 'Another group with the same specificity can match the same machines' },
  KILN_GROUP_SELECTOR_INVALID: { kind: 'invalid', title: 'A group selector is not valid' },
  KILN_TOKEN_NOT_FOUND: { kind: 'not_found', title: 'No such token' },
  KILN_PAYLOAD_NOT_FOUND: { kind: 'not_found', title: 'No such payload' },
  KILN_PAYLOAD_EXISTS: { kind: 'conflict', title: 'A payload with this name exists' },
  KILN_PAYLOAD_IN_USE: { kind: 'conflict', title: 'Machines or profiles still refer to the payload' },
  KILN_PAYLOAD_INVALID: { kind: 'invalid', title: 'The payload is not valid (directory, schema or a parameter outside it)' },
  KILN_USER_NOT_FOUND: { kind: 'not_found', title: 'No such user' },
  KILN_USER_EXISTS: { kind: 'conflict', title: 'A user with this name, e-mail or login identity exists' },
  KILN_USER_IN_USE: { kind: 'conflict', title: 'The user still owns images; delete or hand them over first' },
  KILN_USER_INVALID: { kind: 'invalid', title: 'A user field is not acceptable' },
  KILN_SETUP_NOT_FOUND: { kind: 'not_found', title: 'No such image setup' },
  KILN_SETUP_INVALID: { kind: 'invalid', title: 'The image setup refers to images or versions that do not exist' },
  KILN_BOOT_URL_INVALID_SIGNATURE: { kind: 'forbidden', title: 'The signed boot URL is missing, expired or tampered with' },
  KILN_BOOT_NO_PLAN: { kind: 'not_found', title: 'Nothing to boot: no assignment and no matching group' },
  KILN_CONFIG_INVALID: { kind: 'invalid', title: 'The configuration has problems (each one is listed)' },
  KILN_UNAVAILABLE: { kind: 'unavailable', title: 'Kiln cannot serve this now (shutting down or storage unavailable)' },
  KILN_STORE_UNAVAILABLE: { kind: 'unavailable', title: 'The database cannot be reached or did not answer in time; retry' },
  KILN_SCHEMA_OUTDATED: { kind: 'unavailable', title: 'The database schema is older than this Kiln; run `kiln db migrate`' },
  KILN_SCHEMA_NEWER: { kind: 'unavailable', title: 'The database schema is newer than this Kiln' },
  KILN_SCHEMA_MIGRATION_FAILED: { kind: 'internal', title: 'A schema migration failed and was rolled back' },
  KILN_INTERNAL: { kind: 'internal', title: 'Unexpected internal error' },
  KILN_LOGIN_DISABLED: { kind: 'not_found', title: 'Browser login is not configured (login.provider none)' },
  KILN_JOB_NOT_FOUND: { kind: 'not_found', title: 'No such job' },
  KILN_JOB_TYPE_UNKNOWN: { kind: 'invalid', title: 'No job type of this name is registered' },
  KILN_JOB_TYPE_NOT_CREATABLE: { kind: 'forbidden', title: 'Kiln starts jobs of this type itself; the API cannot create them' },
  KILN_JOB_INPUT_INVALID: { kind: 'invalid', title: "The job input does not match its type's schema" },
  KILN_JOB_NOT_CANCELLABLE: { kind: 'conflict', title: 'The job has finished; only queued and running jobs can be cancelled' },
  KILN_JOB_LEASE_LOST: { kind: 'conflict', title: 'The worker no longer holds the job (its lease expired and it was retried or failed)' },
  KILN_JOB_FAILED: { kind: 'internal', title: 'The job failed; its log says why' },
  KILN_JOB_TIMEOUT: { kind: 'internal', title: 'The job ran longer than its timeout and was stopped' },
  KILN_JOB_LEASE_EXPIRED: { kind: 'unavailable', title: 'The worker running the job stopped renewing its lease (it died or lost the database)' },
  KILN_JOB_INTERRUPTED: { kind: 'unavailable', title: 'The worker shut down before the job finished; the job was queued again' },
  KILN_JOB_CANCELLED: { kind: 'conflict', title: 'The job was cancelled' },
  KILN_RECIPE_NOT_FOUND: { kind: 'not_found', title: 'No such recipe' },
  KILN_RECIPE_EXISTS: { kind: 'conflict', title: 'A recipe with this name exists' },
  KILN_RECIPE_INVALID: { kind: 'invalid', title: 'The recipe is not valid (kind, arch, spec or archive); every problem is listed' },
  KILN_BUILD_INVALID: { kind: 'invalid', title: 'The build request is not valid (architecture, version, channel, kernel command line or initrd)' },
  KILN_BUILD_UNSUPPORTED: { kind: 'unavailable', title: 'This worker cannot run the build (not root, a build tool missing, or another architecture)' },
  KILN_BUILD_FAILED: { kind: 'internal', title: 'A build step failed; the job log says why' },
  KILN_BUILD_NO_KERNEL: { kind: 'unprocessable', title: 'The built root filesystem has no kernel in /boot or /lib/modules' },
  KILN_BUILD_ARCHIVE_UNSAFE: { kind: 'unprocessable', title: 'The archive would write through a link that leaves the root filesystem' },
  KILN_PUBLIC_KEY_NOT_FOUND: { kind: 'not_found', title: 'No such public key' },
  KILN_PUBLIC_KEY_EXISTS: { kind: 'conflict', title: 'A live public key has this name' },
  KILN_PUBLIC_KEY_INVALID: { kind: 'invalid', title: 'Not an OpenSSH public key Kiln accepts (one line: type, base64, optional comment; never a private key)' },
  KILN_PUBLIC_KEY_NOT_DELETED: { kind: 'conflict', title: 'Only a deleted public key can be purged' },
  KILN_IMS_OBJECT_NOT_FOUND: { kind: 'not_found', title: 'No object at this bucket and key' },
  KILN_IMS_OBJECT_EXISTS: { kind: 'conflict', title: 'An object already has this bucket and key' },
  KILN_IMS_RECORD_NOT_FOUND: { kind: 'not_found', title: 'No such IMS record (recipe, image or job)' },
  KILN_IMS_INVALID: { kind: 'unprocessable', title: 'The IMS record does not validate (field errors in `errors`)' },
  KILN_IMS_BAD_REQUEST: { kind: 'invalid', title: 'The IMS request cannot be carried out as asked' },
  KILN_IMS_CONFLICT: { kind: 'conflict', title: 'The IMS record cannot be changed that way (a link already set, a record in use)' },
  KILN_CUSTOMIZE_NOT_FOUND: { kind: 'not_found', title: 'The job is not an image-customize job' },
  KILN_CUSTOMIZE_NOT_WAITING: { kind: 'conflict', title: 'The customize session is not waiting for the user (still preparing, or finished)' },
  KILN_CUSTOMIZE_NO_ROOTFS: { kind: 'invalid', title: 'The image version has no rootfs artifact (a squashfs) to customize' },
  KILN_CUSTOMIZE_NO_PORT: { kind: 'unavailable', title: 'Every port of customize.ports is in use on the worker' },
  KILN_CUSTOMIZE_SSHD_FAILED: { kind: 'internal', title: "The customize session's sshd did not start or stopped on its own; the job log says why" },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalogue;
