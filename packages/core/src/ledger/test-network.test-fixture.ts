/**
 * Test fixture: a five-member network in memory that executes blocks with the real contracts
 * (`executeBlockAsync`), applies their write sets to a `MemoryState` as `verifyChain` does, and
 * keeps every block with a correct header, so the same chain can be re-verified afterwards.
 */
import { fromBase64Url, toBase64Url } from '../codec/bytes.ts';
import type { JsonObject } from '../codec/canonical-json.ts';
import { sha256Hex } from '../crypto/hash.ts';
import { sign } from '../crypto/ed25519.ts';
import { Identity } from '../client/identity.ts';
import { patientCodeOf } from '../contracts/identity.ts';
import type { StateTable } from '../contracts/state.ts';
import type { StaffRole } from '../policy/roles.ts';
import { blockHash, nextStateRoot, resultsHashOf, txRootOf, type Block } from './block.ts';
import { executeBlockAsync } from './chain-verify.ts';
import type { BlockEntry, BlockExecution, TxCode } from './execute.ts';
import { genesisBlock } from './genesis.ts';
import { MemoryState } from './memory-state.ts';
import { createNetwork, type InstitutionPlan, type NewNetwork } from './network-builder.ts';
import { txIdOf, txSigningMessage, type Tx, type UnsignedTx } from './tx.ts';
import type { TxType } from './tx-types.ts';

export const GENESIS_TIME = Date.UTC(2025, 0, 1);
/** Default gap between consecutive blocks. */
export const BLOCK_INTERVAL = 1000;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export const FOUNDERS: readonly InstitutionPlan[] = [
  { id: 'hosp-a', name: 'Hospital A', kind: 'hospital', validator: true },
  { id: 'hosp-b', name: 'Hospital B', kind: 'hospital', validator: true },
  { id: 'clinic-c', name: 'Clinic C', kind: 'clinic', validator: true },
  { id: 'lab-d', name: 'Laboratory D', kind: 'laboratory', validator: false },
  { id: 'res-e', name: 'Research Institute E', kind: 'research', validator: false },
];

export class TestLedger {
  readonly state = new MemoryState();
  readonly blocks: Block[] = [];
  /** time of the last block */
  time = GENESIS_TIME;
  private nonceCounter = 0;

  private constructor(readonly net: NewNetwork) {
    const g = genesisBlock(net.genesis);
    this.state.apply(g.writes, []);
    this.blocks.push(g.block);
  }

  static async create(): Promise<TestLedger> {
    return new TestLedger(await createNetwork({ name: 'Test Consortium', createdAt: GENESIS_TIME, institutions: FOUNDERS }));
  }

  get network(): string {
    return this.net.network;
  }

  get height(): number {
    return this.blocks.length - 1;
  }

  institution(id: string): Identity {
    const i = this.net.institutions.get(id);
    if (i === undefined) throw new Error(`no institution ${id}`);
    return i;
  }

  /** A signed tx for this network with a fresh, readable nonce and a fixed createdAt. */
  tx(author: Identity, type: TxType, body: JsonObject, options: { nonce?: string; network?: string } = {}): Promise<BlockEntry> {
    return author.tx(options.network ?? this.network, type, body, {
      nonce: options.nonce ?? `n${String(++this.nonceCounter)}`,
      createdAt: GENESIS_TIME,
    });
  }

  /** Executes one block at `time` (default: previous block + 1 s), applies it and keeps it. */
  async run(entries: readonly BlockEntry[], time = this.time + BLOCK_INTERVAL): Promise<BlockExecution> {
    const height = this.blocks.length;
    const prev = this.blocks[height - 1]!.header;
    const exec = await executeBlockAsync(this.state, this.state, entries, { network: this.network, height, time });
    const block: Block = {
      header: {
        network: this.network,
        height,
        prevHash: blockHash(prev),
        txRoot: txRootOf(entries.map((e) => e.txId)),
        resultsHash: resultsHashOf(
          entries.map((e) => e.tx),
          exec.codes,
        ),
        stateRoot: nextStateRoot(prev.stateRoot, exec.writes),
        time,
        position: String(height),
      },
      txs: entries.map((e) => e.tx),
      codes: exec.codes,
    };
    this.state.apply(
      exec.writes,
      entries.map((e, i) => ({ txId: e.txId, author: e.tx.author, nonce: e.tx.nonce, ok: exec.codes[i] === 'OK' })),
    );
    this.blocks.push(block);
    this.time = time;
    return exec;
  }

  /** Runs one transaction in its own block and returns its code. */
  async code(entry: BlockEntry | Promise<BlockEntry>, time?: number): Promise<TxCode> {
    const exec = await this.run([await entry], time);
    return exec.codes[0]!;
  }

  /** Runs one transaction that must be accepted. */
  async ok(entry: BlockEntry | Promise<BlockEntry>, time?: number): Promise<BlockEntry> {
    const e = await entry;
    const code = await this.code(e, time);
    if (code !== 'OK') throw new Error(`expected ${e.tx.type} to be accepted, got ${code}`);
    return e;
  }

  async enrol(institutionId: string, localId: string, role: StaffRole): Promise<Identity> {
    const staff = await Identity.generate(`${institutionId}/${localId}`);
    await this.ok(
      this.tx(this.institution(institutionId), 'identity.enrolStaff', {
        localId,
        role,
        signingKey: staff.signingKey,
        encryptionKey: staff.encryptionKey,
        displayName: localId,
      }),
    );
    return staff;
  }

  patientCode(nationalId: string): string {
    return patientCodeOf(fromBase64Url(this.net.patientCodeKey), nationalId);
  }

  /** The body that registers `patient`'s keys under the code of `nationalId`, with a valid proof. */
  /** `institution`: the one whose staff will submit the registration (the proof names it). */
  async registerPatientBody(patient: Identity, nationalId: string, institution = 'hosp-a'): Promise<JsonObject> {
    const patientCode = this.patientCode(nationalId);
    return {
      patientCode,
      signingKey: patient.signingKey,
      encryptionKey: patient.encryptionKey,
      possession: await patient.possessionProof(this.network, patientCode, institution),
    };
  }

  async registerPatient(by: Identity, nationalId: string): Promise<{ patient: Identity; patientCode: string }> {
    const patient = await Identity.generate(`patient:${nationalId}`);
    await this.ok(this.tx(by, 'identity.registerPatient', await this.registerPatientBody(patient, nationalId, by.label.split('/')[0])));
    return { patient, patientCode: this.patientCode(nationalId) };
  }

  get<T>(table: StateTable, key: string): T | undefined {
    return this.state.get(table, key) as T | undefined;
  }

  /** Every state entry, to compare the state before and after. */
  snapshot(): [string, string, string][] {
    return [...this.state.entries()];
  }
}

/** The record fields shared by `records.register` and `records.amend` bodies. */
export function recordFields(overrides: JsonObject = {}): JsonObject {
  return {
    category: 'Observation',
    groupKeyId: null,
    hashAlg: 'sha-256',
    hashLength: 32,
    hash: sha256Hex('plaintext'),
    ciphertextHash: sha256Hex('ciphertext'),
    size: 1234,
    storage: 'vault',
    pointer: 'vault://record/1',
    ciphertext: null,
    keyEnvelopes: { patient: 'cGF0aWVudA', custodian: 'Y3VzdG9kaWFu' },
    ...overrides,
  };
}

/** A `records.register` body for a vault record, without a registration request. */
export function recordBody(patientCode: string, overrides: JsonObject = {}): JsonObject {
  return { patientCode, ...recordFields(), registrationRequestId: null, ...overrides };
}

/** A `records.amend` body: a new version of `recordId`. */
export function amendBody(recordId: string, overrides: JsonObject = {}): JsonObject {
  return { recordId, ...recordFields(overrides) };
}

/** A transaction that names `author` but is signed with `signer`'s key. */
export async function forgedTx(network: string, author: Identity, signer: Identity, type: TxType, body: JsonObject): Promise<BlockEntry> {
  const unsigned: UnsignedTx = { v: 1, network, type, body, author: author.keyId, nonce: 'forged', createdAt: GENESIS_TIME };
  const txId = txIdOf(unsigned);
  const signature = toBase64Url(await sign(signer.file.signing.privateKey, txSigningMessage(txId)));
  const tx: Tx = { ...unsigned, signature };
  return { tx, txId };
}

/** Staff enrolled by `createCast`, as `institution/localId` with their role. */
export const STAFF: readonly (readonly [string, string, StaffRole])[] = [
  ['hosp-a', 'dr-kim', 'doctor'],
  ['hosp-a', 'nurse-lee', 'nurse'],
  ['hosp-a', 'op-a', 'operator'],
  ['hosp-a', 'aud-a', 'auditor'],
  ['hosp-b', 'dr-park', 'doctor'],
  ['hosp-b', 'nurse-b', 'nurse'],
  ['clinic-c', 'dr-choi', 'doctor'],
  ['clinic-c', 'op-c', 'operator'],
  ['lab-d', 'op-d', 'operator'],
  ['lab-d', 'dr-d', 'doctor'],
  ['res-e', 'res-1', 'researcher'],
  ['res-e', 'op-e', 'operator'],
];

export interface TestPatient {
  patient: Identity;
  patientCode: string;
}

export interface Cast {
  ledger: TestLedger;
  /** an enrolled member of staff by `institution/localId` */
  staff(staffId: string): Identity;
  /** patients whose home is hosp-a */
  alice: TestPatient;
  bob: TestPatient;
}

/** A fresh network with the staff of `STAFF` enrolled and two patients of hosp-a registered. */
export async function createCast(): Promise<Cast> {
  const ledger = await TestLedger.create();
  const staff = new Map<string, Identity>();
  const entries: BlockEntry[] = [];
  for (const [inst, localId, role] of STAFF) {
    const id = await Identity.generate(`${inst}/${localId}`);
    staff.set(`${inst}/${localId}`, id);
    entries.push(
      await ledger.tx(ledger.institution(inst), 'identity.enrolStaff', {
        localId,
        role,
        signingKey: id.signingKey,
        encryptionKey: id.encryptionKey,
        displayName: localId,
      }),
    );
  }
  const exec = await ledger.run(entries);
  if (exec.codes.some((c) => c !== 'OK')) throw new Error(`enrolment failed: ${exec.codes.join(', ')}`);
  const get = (staffId: string): Identity => {
    const id = staff.get(staffId);
    if (id === undefined) throw new Error(`no staff ${staffId}`);
    return id;
  };
  const alice = await ledger.registerPatient(get('hosp-a/op-a'), '123-45-678');
  const bob = await ledger.registerPatient(get('hosp-a/dr-kim'), '987-65-432');
  return { ledger, staff: get, alice, bob };
}
