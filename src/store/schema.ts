// Table shapes as Kysely sees them. JSON columns are TEXT on every dialect so the query code is shared.
import type { Generated } from 'kysely';

export interface Database {
  artifacts: { sha256: string; size: number; media_type: string; created_at: string };
  images: { name: string; description: string; labels: string; owner: string | null; created_at: string; updated_at: string; deleted_at: string | null; revision: number };
  image_versions: { id: string; image: string; version: string; arch: string; cmdline: string; metadata: string; created_at: string };
  version_artifacts: { version_id: string; position: number; name: string; role: string; sha256: string };
  channels: { image: string; name: string; version: string; revision: number; updated_at: string };
  channel_history: { seq: Generated<number>; image: string; channel: string; action: string; from_version: string | null; to_version: string; actor: string; at: string };
  profiles: {
    name: string; description: string; image: string; channel: string | null; version: string | null;
    kernel_args: string; template: string | null; payload: string | null; created_at: string; updated_at: string; revision: number;
  };
  groups: { name: string; description: string; selectors: string; profile: string; created_at: string; updated_at: string; revision: number };
  machines: {
    id: string; uuid: string | null; serial: string | null; hostname: string | null; labels: string; arch: string | null;
    firmware: string | null; state: string; profile: string | null; next_boot: string | null; last_seen_at: string | null;
    payload: string | null; next_boot_taken: string | null; next_boot_taken_at: string | null;
    created_at: string; updated_at: string; revision: number;
  };
  machine_macs: { mac: string; machine_id: string; position: number };
  boot_events: { id: Generated<number>; machine_id: string; at: string; kind: string; detail: string };
  secrets: { name: string; value: string; created_at: string };
  tokens: {
    id: string; name: string; role: string; hash: string; created_at: string; last_used_at: string | null; revoked_at: string | null;
    user_name: string | null; machine_id: string | null;
  };
  payloads: { name: string; description: string; directory: string; schema: string; parameters: string; created_at: string; updated_at: string; revision: number };
  users: { name: string; display_name: string; email: string | null; role: string; external_id: string | null; created_at: string; updated_at: string; revision: number };
  sessions: { hash: string; user_name: string; created_at: string; expires_at: string };
  image_setups: { id: string; name: string; owner: string | null; images: string; created_at: string; updated_at: string; revision: number };
  boot_queue: { seq: Generated<number>; machine_id: string; setup_id: string; update_images: number; actor: string; created_at: string; popped_at: string | null };
  recipes: { id: string; name: string; kind: string; arch: string; description: string; sha256: string; size: number; created_at: string; updated_at: string; revision: number };
  // public keys, and the customize sessions they open (migration 0006_public_keys)
  public_keys: {
    id: string; name: string; owner: string | null; public_key: string; key_type: string; comment: string; fingerprint: string;
    created_at: string; deleted_at: string | null;
  };
  customize_sessions: {
    job_id: string; image: string; version: string; public_key_id: string; public_key_fingerprint: string;
    host: string | null; port: number | null; user_name: string | null; host_key_fingerprint: string | null;
    done_requested_at: string | null; done_requested_by: string | null; created_at: string; updated_at: string;
  };
  // Cray IMS records (migration 0007_ims); link_path is link.path, kept for lookups
  ims_objects: { bucket: string; key: string; sha256: string; size: number; md5: string; content_type: string; created_at: string };
  ims_recipes: {
    id: string; name: string; recipe_type: string; linux_distribution: string; template_dictionary: string; require_dkms: number; arch: string;
    link: string | null; link_path: string | null; created_at: string; deleted_at: string | null;
  };
  ims_images: { id: string; name: string; arch: string; metadata: string; link: string | null; link_path: string | null; created_at: string; deleted_at: string | null };
  ims_jobs: { id: string; job_type: string; artifact_id: string; target_image_id: string; resultant_image_id: string | null; fields: string; created_at: string };
}
