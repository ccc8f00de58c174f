/**
 * Demo only (`medledger demo`): lets the browser app sign in as one of the demo's synthetic
 * identities by handing it that identity's key file. Real nodes never register these routes:
 * outside the demo, keys are imported from a file or made in the browser, and no server holds them.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { MedledgerError } from '@medledger/core/errors';
import type { Staff } from '@medledger/core/contracts/state';
import type { LedgerStore } from '../store/ledger-store.ts';

interface DemoIdentityFile {
  label: string;
  signing: { publicKey: string; privateKey: string };
  encryption: { publicKey: string; privateKey: string };
  patientCode?: string;
}

export interface DemoIdentitySummary {
  name: string;
  label: string;
  kind: 'staff' | 'patient';
  institution: string | null;
  role: string | null;
  displayName: string;
  patientCode: string | null;
}

const NAME = /^[a-z0-9][a-z0-9_-]{0,95}$/;

export function registerDemoIdentities(app: FastifyInstance, store: LedgerStore, dir: string): void {
  const read = (name: string): DemoIdentityFile => JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as DemoIdentityFile;
  const list = (): DemoIdentitySummary[] =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .flatMap((name): DemoIdentitySummary[] => {
        const file = read(name);
        if (name.includes('__')) {
          const staffId = file.label;
          const staff = store.get('staff', staffId) as unknown as Staff | undefined;
          if (staff === undefined) return [];
          const base = { name, label: file.label, kind: 'staff' as const, institution: staff.institution, role: staff.role };
          return [{ ...base, displayName: staff.displayName, patientCode: null }];
        }
        if (name.startsWith('patient-') && file.patientCode !== undefined) {
          const displayName = `${file.label.replace(/^patient /, '')} (synthetic patient ${name.slice('patient-'.length)})`;
          return [{ name, label: file.label, kind: 'patient', institution: null, role: null, displayName, patientCode: file.patientCode }];
        }
        return [];
      });

  app.get('/api/demo/identities', { schema: { hide: true } }, () => list());
  app.get(
    '/api/demo/identities/:name',
    { schema: { hide: true, params: Type.Object({ name: Type.String({ pattern: NAME.source }) }) } },
    (req) => {
      const { name } = req.params as { name: string };
      if (!list().some((i) => i.name === name)) throw new MedledgerError('NOT_FOUND', { details: 'No such demo identity.' });
      const file = read(name);
      // The key file as the CLI writes it; the national id of a synthetic patient stays on the server.
      return { label: file.label, signing: file.signing, encryption: file.encryption, patientCode: file.patientCode ?? null };
    },
  );
}
