#!/usr/bin/env node
// Entry point: runs the compiled CLI (scripts/ensure-ready.sh builds dist/ when sources change).
import '../dist/cli/kiln.js';
