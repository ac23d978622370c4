// Process entry of the `kiln` binary.
import { main } from './main.js';

process.exitCode = await main(process.argv);
