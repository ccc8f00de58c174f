/**
 * Sign in: a demo identity (synthetic keys from `medledger demo`), an identity this browser
 * already holds, a key file, or a new patient key made here. Whichever way, the signing key ends
 * up as a non-extractable WebCrypto key in IndexedDB and every action is signed in this browser.
 */
import { useContext, useState } from 'react';
import { Identity } from '@medledger/core/client/identity';
import { MedledgerError, isMedledgerError } from '@medledger/core/errors';
import { getJson } from './ledger/node-api.ts';
import type { DemoIdentity } from './ledger/ledger-types.ts';
import { generateEncryptionKey, importEncryptionKey, importSigningSeed, isKey } from './keys/browser-keys.ts';
import { generateSigningKey } from '@medledger/core/crypto/ed25519';
import { forgetIdentity, listIdentities, saveIdentity, storedFrom, type StoredIdentity } from './keys/key-store.ts';
import { SessionContext, openSession } from './session.ts';
import { ErrorNotice } from './ui/error-notice.tsx';
import { useAction, useLoad } from './ui/use-async.ts';
import { navigate } from './ui/router.tsx';

const PATIENT_CODE = /^[0-9a-f]{64}$/;

interface KeyFile {
  label: string;
  signing: { publicKey: string; privateKey: string };
  encryption: { publicKey: string; privateKey: string };
  patientCode?: string | null;
}

function asKeyFile(value: unknown): KeyFile {
  const f = value as Partial<KeyFile> | null;
  if (
    typeof f?.label !== 'string' ||
    !isKey(f.signing?.publicKey) ||
    !isKey(f.signing.privateKey) ||
    !isKey(f.encryption?.publicKey) ||
    !isKey(f.encryption.privateKey)
  )
    throw new MedledgerError('BAD_REQUEST', { details: 'This is not a medledger key file (label, signing and encryption keys).' });
  return f as KeyFile;
}

/** Imports a key file's keys into this browser as non-extractable keys; the file's bytes are not kept. */
async function importKeyFile(file: KeyFile, o: { synthetic: boolean; patientCode: string | null }): Promise<StoredIdentity> {
  const signing = await importSigningSeed(file.signing.publicKey, file.signing.privateKey);
  const encryption = await importEncryptionKey(file.encryption.publicKey, file.encryption.privateKey);
  const identity = new Identity({ label: file.label, signing: signing.pair, encryption: encryption.pair });
  const fileCode = typeof file.patientCode === 'string' && PATIENT_CODE.test(file.patientCode) ? file.patientCode : null;
  const stored = storedFrom(identity, { patientCode: o.patientCode ?? fileCode, synthetic: o.synthetic });
  await saveIdentity(stored);
  return stored;
}

function homeOf(s: { kind: string }): string {
  return s.kind === 'staff' ? '/institution/records' : s.kind === 'patient' ? '/patient' : '/network';
}

export function SignIn() {
  const { setSession } = useContext(SessionContext);
  const action = useAction();
  const demo = useLoad(async () => {
    try {
      return await getJson<DemoIdentity[]>('/api/demo/identities');
    } catch (e) {
      if (isMedledgerError(e) && e.code === 'NOT_FOUND') return [];
      throw e;
    }
  }, []);
  const held = useLoad(listIdentities, [action.done]);
  const [patientCode, setPatientCode] = useState('');
  const [newLabel, setNewLabel] = useState('');
  const [created, setCreated] = useState<Identity | null>(null);

  const enter = async (stored: StoredIdentity): Promise<string> => {
    const session = await openSession(stored);
    setSession(session);
    navigate(homeOf(session));
    return `Signed in as ${stored.label}.`;
  };
  const code = (): string | null => {
    const c = patientCode.trim().toLowerCase();
    if (c === '') return null;
    if (!PATIENT_CODE.test(c)) throw new MedledgerError('BAD_REQUEST', { details: 'A patient code is 64 hexadecimal characters.' });
    return c;
  };

  const staff = (demo.data ?? []).filter((d) => d.kind === 'staff');
  const patients = (demo.data ?? []).filter((d) => d.kind === 'patient');

  return (
    <main id="main" className="page sign-in">
      <h1>Sign in</h1>
      <p className="lead">
        Your private keys stay in this browser. Every action is signed here; the node only ever sees signatures and public keys.
      </p>
      <ErrorNotice error={action.error ?? demo.error ?? held.error} />
      {action.busy && (
        <p role="status" className="notice">
          Working…
        </p>
      )}

      {staff.length + patients.length > 0 && (
        <section aria-labelledby="demo-h" className="card">
          <h2 id="demo-h">Demo identities</h2>
          <p className="warning">
            These identities are synthetic: the demo node made their keys and keeps copies of them. Never use them for real data.
          </p>
          <div className="columns">
            {(
              [
                ['Staff', staff, (d: DemoIdentity) => `${d.role ?? ''} · ${d.institution ?? ''}`],
                ['Patients', patients, (d: DemoIdentity) => `${d.patientCode?.slice(0, 12) ?? ''}…`],
              ] as const
            ).map(([title, list, meta]) => (
              <div key={title}>
                <h3>{title}</h3>
                <ul className="pick-list">
                  {list.map((d) => (
                    <li key={d.name}>
                      <button
                        type="button"
                        data-identity={d.name}
                        disabled={action.busy}
                        onClick={() =>
                          void action.run(async () => {
                            const file = asKeyFile(await getJson(`/api/demo/identities/${d.name}`));
                            return enter(await importKeyFile(file, { synthetic: true, patientCode: d.patientCode ?? null }));
                          })
                        }
                      >
                        <span className="who">{d.displayName}</span>
                        <span className={d.kind === 'patient' ? 'meta mono' : 'meta'}>{meta(d)}</span>
                      </button>
                    </li>
                  ))}
                </ul>
              </div>
            ))}
          </div>
        </section>
      )}

      {(held.data?.length ?? 0) > 0 && (
        <section aria-labelledby="held-h" className="card">
          <h2 id="held-h">Identities in this browser</h2>
          <ul className="pick-list">
            {held.data?.map((s) => (
              <li key={s.keyId} className="row">
                <button type="button" disabled={action.busy} onClick={() => void action.run(() => enter(s))}>
                  <span className="who">{s.label}</span>
                  <span className="meta mono">
                    {s.keyId.slice(0, 14)}…{s.synthetic ? ' · synthetic demo key' : ''}
                  </span>
                </button>
                <button
                  type="button"
                  className="secondary"
                  aria-label={`Forget ${s.label} in this browser`}
                  onClick={() =>
                    void action.run(async () => {
                      await forgetIdentity(s.keyId);
                      return `${s.label} is no longer kept in this browser.`;
                    })
                  }
                >
                  Forget
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}

      <section aria-labelledby="import-h" className="card">
        <h2 id="import-h">Import a key file</h2>
        <p>
          A key file made by <code>medledger keys generate</code> or given by your institution. It is read here and never uploaded.
        </p>
        <label htmlFor="patient-code-import">Patient code (patients only, if the file has none)</label>
        <input
          id="patient-code-import"
          className="mono"
          value={patientCode}
          onChange={(e) => setPatientCode(e.target.value)}
          autoComplete="off"
          spellCheck={false}
        />
        <label htmlFor="key-file">Key file (JSON)</label>
        <input
          id="key-file"
          type="file"
          accept="application/json,.json"
          onChange={(e) => {
            const f = e.target.files?.[0];
            if (f === undefined) return;
            void action.run(async () => {
              let parsed: unknown;
              try {
                parsed = JSON.parse(await f.text());
              } catch (cause) {
                throw new MedledgerError('INVALID_JSON', { details: 'The key file is not JSON.', cause });
              }
              return enter(await importKeyFile(asKeyFile(parsed), { synthetic: false, patientCode: code() }));
            });
          }}
        />
      </section>

      <section aria-labelledby="create-h" className="card">
        <h2 id="create-h">Create a patient key</h2>
        <p>
          Makes a signing key and an encryption key in this browser. Give the public keys below to your home hospital so it registers you;
          the private keys never leave this device.
        </p>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(async () => {
              const label = newLabel.trim() === '' ? 'patient' : newLabel.trim();
              // Both keys are made non-extractable here (core's generator would export them as bytes).
              const identity = new Identity({
                label,
                signing: await generateSigningKey(),
                encryption: (await generateEncryptionKey()).pair,
              });
              await saveIdentity(storedFrom(identity, { patientCode: code(), synthetic: false }));
              setCreated(identity);
              return `A key for ${label} is kept in this browser.`;
            });
          }}
        >
          <label htmlFor="new-label">Name for this key</label>
          <input id="new-label" value={newLabel} onChange={(e) => setNewLabel(e.target.value)} />
          <button type="submit" disabled={action.busy}>
            Create key
          </button>
        </form>
        {created !== null && (
          <dl className="facts" aria-label="Public keys to give your hospital">
            <dt>Key id</dt>
            <dd className="mono">{created.keyId}</dd>
            <dt>Signing key</dt>
            <dd className="mono">{created.signingKey}</dd>
            <dt>Encryption key</dt>
            <dd className="mono">{created.encryptionKey}</dd>
          </dl>
        )}
      </section>
      {action.done !== null && (
        <p role="status" className="notice ok">
          {action.done}
        </p>
      )}
    </main>
  );
}
