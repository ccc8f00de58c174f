#!/usr/bin/env node
// Launcher for the `medledger` CLI: the node runs its TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
