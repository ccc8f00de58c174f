/**
 * The web app in a real Chromium (Debian's, headless, driven by playwright-core) against a real
 * embedded demo node: a doctor registers a record with a file; the patient, on a phone-sized
 * screen, approves a doctor at another hospital; that doctor opens the record decrypted in the
 * browser with its ledger proof verified; the patient sees the access in the timeline; a revoked
 * consent makes the next open fail with its code and message. Every request the browsers send is
 * kept, and none may carry a private key. Screenshots of each page go to test-output/web-portal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { fromBase64Url } from '@medledger/core/codec/bytes';
import { ed25519Pkcs8 } from '@medledger/core/crypto/ed25519';
import type { LedgerNode } from '../packages/node/src/ledger-node.ts';
import { runDemo } from '../packages/node/src/demo/demo.ts';
import { ROOT, freePort, tempDir } from './test-network.ts';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const OUT = join(ROOT, 'test-output/web-portal');

let node: LedgerNode;
let dataDir: string;
let browser: Browser;
let base: string;
/** every request any page sent: URL, headers and body */
const sent: { url: string; headers: Record<string, string>; body: Buffer | null }[] = [];
/** private keys this test knows the browsers hold, in every encoding that could leak */
const secrets = new Set<string>();

interface KeyFile {
  label: string;
  signing: { publicKey: string; privateKey: string };
  encryption: { publicKey: string; privateKey: string };
  patientCode?: string;
}

function identity(name: string): KeyFile {
  return JSON.parse(readFileSync(join(dataDir, 'identities', `${name}.json`), 'utf8')) as KeyFile;
}

/** A private key as base64url (the files' and JWK 'd' form), standard base64, hex and PKCS#8. */
function remember(privateKey: string, ed25519: boolean): void {
  const raw = Buffer.from(fromBase64Url(privateKey));
  secrets.add(privateKey);
  secrets.add(raw.toString('base64'));
  secrets.add(raw.toString('base64').replace(/=+$/, ''));
  secrets.add(raw.toString('hex'));
  if (ed25519) {
    const pkcs8 = Buffer.from(ed25519Pkcs8(privateKey));
    secrets.add(pkcs8.toString('base64'));
    secrets.add(pkcs8.toString('base64url'));
  }
}

async function newContext(options: { mobile?: boolean } = {}): Promise<BrowserContext> {
  const context = await browser.newContext(
    options.mobile === true
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } },
  );
  context.on('request', (r) => sent.push({ url: r.url(), headers: r.headers(), body: r.postDataBuffer() }));
  return context;
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

/** Signs in on the sign-in page as one of the demo's synthetic identities. */
async function signInAs(page: Page, name: string): Promise<void> {
  await page.goto(`${base}/sign-in`);
  await page.locator(`button[data-identity="${name}"]`).click();
  await page.locator('[data-signed-in]').waitFor();
}

/**
 * Runs in the page (a string: this file is type-checked without the DOM library): lists the
 * identities the page keeps in IndexedDB and tries to export each private key.
 */
const READ_HELD_KEYS = `(async () => {
  const db = await new Promise((resolve, reject) => {
    const r = indexedDB.open('medledger', 1);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(new Error('no database'));
  });
  const all = await new Promise((resolve) => {
    const r = db.transaction('identities').objectStore('identities').getAll();
    r.onsuccess = () => resolve(r.result);
  });
  const exports = async (key) => {
    try {
      await crypto.subtle.exportKey('pkcs8', key);
      return true;
    } catch {
      return false;
    }
  };
  const out = [];
  for (const s of all) {
    const keys = [s.signingKey, s.encryption.keys.privateKey];
    out.push({ label: s.label, extractable: keys.some((k) => k.extractable), exported: (await Promise.all(keys.map(exports))).some(Boolean) });
  }
  return out;
})()`;

beforeAll(async () => {
  mkdirSync(OUT, { recursive: true });
  // The node serves the built app: build it from the sources as they are (a few seconds), never
  // test a build left over from before an edit.
  execFileSync('npm', ['run', 'build', '-w', '@medledger/web'], { cwd: ROOT, stdio: 'ignore' });
  dataDir = tempDir('web');
  const port = await freePort();
  node = await runDemo({ dataDir, host: '127.0.0.1', port, log: () => undefined });
  base = node.url;
  for (const f of readdirSync(join(dataDir, 'identities'))) {
    const file = JSON.parse(readFileSync(join(dataDir, 'identities', f), 'utf8')) as KeyFile;
    remember(file.signing.privateKey, true);
    remember(file.encryption.privateKey, false);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}, 180_000);

/** The pages the README shows; `UPDATE_SCREENSHOTS=1` copies this run's into docs/screenshots. */
const README_SHOTS = [
  '01-sign-in',
  '02-register-form',
  '06-record-decrypted',
  '10-transactions',
  '05-patient-requests',
  '07-patient-timeline',
  '09-open-refused',
  '11-network',
];

afterAll(async () => {
  await browser?.close();
  await node?.stop();
  if (process.env['UPDATE_SCREENSHOTS'] === '1') {
    const docs = join(ROOT, 'docs/screenshots');
    mkdirSync(docs, { recursive: true });
    for (const name of README_SHOTS) copyFileSync(join(OUT, `${name}.png`), join(docs, `${name}.png`));
  }
});

describe('the web app against a real demo node', () => {
  const patient = (): KeyFile => identity('patient-01');
  const evidence = Buffer.from('Synthetic chest X-ray report: right lower lobe consolidation.\n'.repeat(40));
  let doctorA: Page;
  let doctorB: Page;
  let patientPage: Page;
  const diagnosis = 'Community-acquired pneumonia';

  it('serves the app at / and sends unknown API paths a coded 404', async () => {
    const page = await (await newContext()).newPage();
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByText('These identities are synthetic').waitFor();
    await shot(page, '01-sign-in');
    const api = await fetch(`${base}/api/no-such-thing`);
    expect(api.status).toBe(404);
    expect(await api.json()).toMatchObject({ code: 'NOT_FOUND' });
    const deep = await fetch(`${base}/patient/history`);
    expect(deep.status).toBe(200);
    expect(await deep.text()).toContain('<div id="root">');
    await page.close();
  });

  it('a doctor registers a record with an evidence file', async () => {
    doctorA = await (await newContext()).newPage();
    await signInAs(doctorA, 'hosp-north__dr-ahn');
    await doctorA.getByRole('link', { name: 'Register' }).click();
    await doctorA.getByLabel('Patient code').fill(patient().patientCode!);
    await doctorA.getByLabel('Diagnosis').fill(diagnosis);
    await doctorA.getByLabel('SNOMED CT code (optional)').fill('385093006');
    await doctorA.getByLabel(/Evidence files/).setInputFiles({ name: 'chest-xray-report.txt', mimeType: 'text/plain', buffer: evidence });
    await shot(doctorA, '02-register-form');
    await doctorA.getByRole('button', { name: 'Register record' }).click();
    await expect(doctorA.getByText(/Registered in block \d+/).waitFor({ timeout: 30_000 })).resolves.toBeUndefined();
    await shot(doctorA, '03-registered');
    // The custodian's own doctor opens it for treatment: decrypted here, proof verified here.
    await doctorA.getByRole('button', { name: 'Open it' }).click();
    await doctorA.getByRole('button', { name: 'Open and decrypt' }).click();
    await doctorA.locator('[data-decrypted="true"]').waitFor({ timeout: 30_000 });
    await expect(doctorA.locator('.decrypted').textContent()).resolves.toContain(diagnosis);
  });

  it('a doctor at another hospital asks; the patient approves on a phone', async () => {
    doctorB = await (await newContext()).newPage();
    await signInAs(doctorB, 'hosp-river__dr-eom');
    await doctorB.getByRole('link', { name: 'Access requests' }).click();
    await doctorB.getByLabel('Patient code').fill(patient().patientCode!);
    await doctorB.getByLabel(/Reason/).fill('Second opinion on a pneumonia');
    await doctorB.getByRole('button', { name: 'Send request' }).click();
    await doctorB.getByText(/Request sent \(block \d+\)/).waitFor({ timeout: 30_000 });
    await expect.poll(() => doctorB.locator('td.state-pending').count(), { timeout: 30_000 }).toBe(1);
    await shot(doctorB, '04-access-request');

    patientPage = await (await newContext({ mobile: true })).newPage();
    await signInAs(patientPage, 'patient-01');
    const request = patientPage.locator('li.request', { hasText: 'hosp-river/dr-eom' });
    await request.waitFor();
    await expect(request.textContent()).resolves.toContain('Second opinion on a pneumonia');
    await shot(patientPage, '05-patient-requests');
    await request.getByRole('button', { name: 'Approve' }).click();
    await patientPage.getByText(/You approved hosp-river\/dr-eom/).waitFor({ timeout: 30_000 });
  });

  it('that doctor opens the record, decrypted in the browser, its proof verified, its file intact', async () => {
    await doctorB.getByRole('link', { name: 'Records' }).click();
    await doctorB.getByLabel('Patient code').fill(patient().patientCode!);
    await doctorB.getByRole('button', { name: 'Search' }).click();
    await doctorB
      .getByRole('button', { name: /View DocumentReference record/ })
      .first()
      .click();
    await doctorB.getByRole('button', { name: 'Open and decrypt' }).click();
    await doctorB.locator('[data-decrypted="true"]').waitFor({ timeout: 30_000 });
    const view = doctorB.locator('.record-view');
    await expect(view.locator('.decrypted').textContent()).resolves.toContain(diagnosis);
    // Both receipts (the registration and this access) check out in the browser.
    await expect.poll(() => view.locator('[data-verified="true"]').count(), { timeout: 30_000 }).toBe(2);
    const download = doctorB.waitForEvent('download');
    await view.getByRole('button', { name: 'Download' }).click();
    const file = await download;
    expect(readFileSync(await file.path())).toEqual(evidence);
    await shot(doctorB, '06-record-decrypted');
  });

  it('the patient sees the access in the timeline: who, where, when, what, why, served', async () => {
    await patientPage.getByRole('link', { name: 'Access history' }).click();
    const served = patientPage.locator('.timeline li[data-outcome="served"]', { hasText: 'hosp-river/dr-eom' });
    await served.first().waitFor({ timeout: 30_000 });
    const text = (await served.first().textContent()) ?? '';
    expect(text).toContain('doctor at hosp-river');
    expect(text).toContain('DocumentReference record');
    expect(text).toContain('Second opinion on a pneumonia');
    await shot(patientPage, '07-patient-timeline');
  });

  it('after the patient revokes the consent, the next open fails with its code and a sentence', async () => {
    await patientPage.getByRole('link', { name: 'Consents' }).click();
    const consent = patientPage.locator('li.consent', { hasText: 'hosp-river/dr-eom' });
    await consent.waitFor();
    await shot(patientPage, '08-patient-consents');
    await consent.getByRole('button', { name: 'Revoke' }).click();
    await patientPage.getByText(/Revoked: hosp-river\/dr-eom can no longer read/).waitFor({ timeout: 30_000 });

    await doctorB.getByRole('button', { name: 'Open again' }).click();
    const alert = doctorB.locator('.record-view [role="alert"]').first();
    await alert.waitFor({ timeout: 30_000 });
    const code = await alert.getAttribute('data-code');
    expect(code).toMatch(/^CONSENT_/);
    expect(await alert.textContent()).toMatch(/CONSENT_\w+ \S.+/);
    await shot(doctorB, '09-open-refused');

    // The refusal is in the patient's timeline too.
    await patientPage.getByRole('link', { name: 'Access history' }).click();
    await patientPage
      .locator('.timeline li[data-outcome="refused"]', { hasText: 'hosp-river/dr-eom' })
      .first()
      .waitFor({ timeout: 30_000 });
  });

  it('shows the transactions of a patient with block, validity code and finality, and the network live', async () => {
    await doctorA.getByRole('link', { name: 'Transactions' }).click();
    await doctorA.getByLabel('Patient code').fill(patient().patientCode!);
    await doctorA.getByRole('button', { name: 'Search' }).click();
    const rows = doctorA.locator('table tbody tr');
    await rows.first().waitFor({ timeout: 30_000 });
    const all = (await doctorA.locator('table tbody').textContent()) ?? '';
    for (const type of ['records.register', 'access.request', 'access.decide', 'access.recordServed', 'consent.revoke'])
      expect(all).toContain(type);
    expect(all).toContain('✔ verified');
    await shot(doctorA, '10-transactions');

    await doctorA.getByRole('link', { name: 'Network' }).click();
    await doctorA.getByRole('heading', { name: 'Institutions' }).waitFor();
    await doctorA.getByText('Riverside University Hospital').waitFor();
    const height = Number(await doctorA.locator('[data-height]').getAttribute('data-height'));
    // A new request makes a new block: the network view and the patient's open page follow it
    // through the event stream, without a reload.
    await patientPage.getByRole('link', { name: 'Requests' }).click();
    await patientPage.getByText('Nothing is waiting for you.').waitFor();
    await doctorB.getByRole('link', { name: 'Access requests' }).click();
    await doctorB.getByLabel('Patient code').fill(patient().patientCode!);
    await doctorB.getByLabel(/Reason/).fill('Follow-up');
    await doctorB.getByRole('button', { name: 'Send request' }).click();
    await doctorB.getByText(/Request sent/).waitFor({ timeout: 30_000 });
    await expect
      .poll(async () => Number(await doctorA.locator('[data-height]').getAttribute('data-height')), { timeout: 30_000 })
      .toBeGreaterThan(height);
    await shot(doctorA, '11-network');
    await patientPage.locator('li.request', { hasText: 'Follow-up' }).waitFor({ timeout: 30_000 });
  });

  it('a clinic doctor signs in with a key file and asks first; the patient accepts, narrows a consent, opens and erases a record', async () => {
    const clinic = await (await newContext()).newPage();
    await clinic.goto(`${base}/sign-in`);
    await clinic.getByLabel('Key file (JSON)').setInputFiles({
      name: 'dr-gil.json',
      mimeType: 'application/json',
      buffer: readFileSync(join(dataDir, 'identities', 'clinic-east__dr-gil.json')),
    });
    await clinic.getByText('Dr. Ana Gil · doctor · clinic-east').waitFor();
    await clinic.getByRole('link', { name: 'Register' }).click();
    await clinic.getByLabel('Patient code').fill(patient().patientCode!);
    await clinic.getByLabel('Diagnosis').fill('Essential hypertension, follow-up');
    await clinic.getByRole('button', { name: 'Ask the patient first' }).click();
    await clinic.getByText(/Asked the patient/).waitFor({ timeout: 30_000 });

    await patientPage.getByRole('link', { name: 'Requests' }).click();
    const ask = patientPage.locator('li.request', { hasText: 'clinic-east/dr-gil' });
    await ask.getByRole('button', { name: 'Accept' }).click();
    await patientPage.getByText(/You accepted the registration/).waitFor({ timeout: 30_000 });

    await clinic.getByRole('button', { name: 'Register record' }).click();
    await clinic.getByText(/Registered in block \d+/).waitFor({ timeout: 30_000 });

    // The demo's consent lets Riverside's doctors read conditions and observations: keep conditions only.
    await patientPage.getByRole('link', { name: 'Consents' }).click();
    const grant = patientPage.locator('li.consent', { hasText: 'doctors at hosp-river' });
    await grant.getByRole('button', { name: 'Narrow' }).click();
    await grant.getByLabel('Observation').uncheck();
    await grant.getByRole('button', { name: 'Save narrower consent' }).click();
    await patientPage.getByText(/Narrowed \(block \d+\)/).waitFor({ timeout: 30_000 });
    await expect.poll(() => grant.textContent(), { timeout: 30_000 }).toMatch(/may read Condition for treatment/);

    // The patient opens the clinic's record with their own key, then has it erased.
    await patientPage.getByRole('link', { name: 'Records', exact: true }).click();
    const row = patientPage.locator('tr', { hasText: 'clinic-east' }).filter({ hasText: 'Condition' });
    await row.getByRole('button', { name: /View Condition record/ }).click();
    await patientPage.getByRole('button', { name: 'Open and decrypt' }).click();
    await patientPage.locator('[data-decrypted="true"]').waitFor({ timeout: 30_000 });
    await expect(patientPage.locator('.decrypted').textContent()).resolves.toContain('Essential hypertension, follow-up');
    await shot(patientPage, '13-patient-record');
    patientPage.once('dialog', (d) => void d.accept());
    await patientPage.getByRole('button', { name: 'Request erasure' }).click();
    await patientPage.getByText(/Erased \(block \d+\)/).waitFor({ timeout: 30_000 });
    await expect
      .poll(() => patientPage.locator('tr', { hasText: 'clinic-east' }).filter({ hasText: 'Condition' }).textContent(), { timeout: 30_000 })
      .toContain('erased');
  });

  it('keeps every private key non-extractable in IndexedDB: created here, imported from a file, or a demo key', async () => {
    const page = await (await newContext({ mobile: true })).newPage();
    await page.goto(`${base}/sign-in`);
    await page.getByLabel('Name for this key').fill('my phone');
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.getByText('A key for my phone is kept in this browser.').waitFor();
    await shot(page, '12-created-key');
    type Held = { label: string; extractable: boolean; exported: boolean }[];
    const created = await page.evaluate<Held>(READ_HELD_KEYS);
    expect(created).toEqual([{ label: 'my phone', extractable: false, exported: false }]);
    // The pages that signed in with a demo identity or a key file hold theirs the same way.
    for (const held of [await doctorB.evaluate<Held>(READ_HELD_KEYS), await patientPage.evaluate<Held>(READ_HELD_KEYS)]) {
      expect(held.length).toBeGreaterThan(0);
      for (const h of held) expect(h, h.label).toMatchObject({ extractable: false, exported: false });
    }
  });

  it('no private key ever appears in a request the browsers sent', () => {
    expect(sent.length).toBeGreaterThan(50);
    const signed = sent.filter((r) => r.headers['signature'] !== undefined);
    expect(signed.length).toBeGreaterThan(3);
    for (const r of sent) {
      const text = [r.url, JSON.stringify(r.headers), r.body?.toString('utf8') ?? '', r.body?.toString('base64') ?? ''].join('\n');
      for (const secret of secrets) expect(text.includes(secret), `a private key in a request to ${new URL(r.url).pathname}`).toBe(false);
    }
  });
});
