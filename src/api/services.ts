// The core services an HTTP listener needs; built once by the server's composition root.
import type { ArtifactService } from '../core/services/artifact-service.js';
import type { BootService } from '../core/services/boot-service.js';
import type { GroupService } from '../core/services/group-service.js';
import type { ImageService } from '../core/services/image-service.js';
import type { MachineService } from '../core/services/machine-service.js';
import type { ProfileService } from '../core/services/profile-service.js';
import type { TokenService } from '../core/services/token-service.js';
import type { ImageSetupService } from '../core/services/image-setup-service.js';
import type { PayloadService } from '../core/services/payload-service.js';
import type { UserService } from '../core/services/user-service.js';
import type { Clock } from '../core/ports.js';
import type { JobService } from '../jobs/job-service.js';
import type { PublicKeyService } from '../core/services/public-key-service.js';
import type { CustomizeService } from '../jobs/customize/customize-service.js';
import type { RecipeService } from '../core/services/recipe-service.js';

export interface Services {
  artifacts: ArtifactService;
  images: ImageService;
  machines: MachineService;
  profiles: ProfileService;
  groups: GroupService;
  tokens: TokenService;
  boot: BootService;
  payloads: PayloadService;
  users: UserService;
  setups: ImageSetupService;
  jobs: JobService;
  publicKeys: PublicKeyService;
  customize: CustomizeService;
  recipes: RecipeService;
  clock: Clock;
}
